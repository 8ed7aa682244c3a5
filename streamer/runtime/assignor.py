"""streamer's partition assignor on aiokafka's assignor interface: tasks, sticky, with standbys and warm-ups.

Every member subscribes with user data saying who it is (a process id kept in its
state directory, its ``application_server`` endpoint), which tasks it ran as active
and the changelog offsets of the task state it holds locally. The leader turns
partitions into tasks (partition n of every input topic of a sub-topology is one task),
assigns them with streamer.runtime.task_assignment, and sends every member its
partitions plus, in the assignment's user data, its standby tasks and the endpoint ->
active/standby task map of the whole group (for interactive queries).

aiokafka calls ``metadata`` when the member joins, ``assign`` on the leader only, and
``on_assignment`` on every member before the rebalance listener's
``on_partitions_assigned``; instances work, aiokafka only looks the methods up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

from streamer.runtime.task_assignment import AssignmentSettings, MemberState, TaskId, assign_tasks

log = logging.getLogger("streamer.assignor")

#: Version of the user data this assignor writes; it reads its own and older ones.
USER_DATA_VERSION = 1


@dataclass(frozen=True)
class AssignedTasks:
    """This member's share of a generation, and where every task runs (by endpoint)."""

    standby: frozenset[TaskId]
    warmup: frozenset[TaskId]
    #: endpoint -> active tasks and endpoint -> standby tasks, for members with an endpoint
    active_by_endpoint: Mapping[str, frozenset[TaskId]]
    standby_by_endpoint: Mapping[str, frozenset[TaskId]]
    #: rejoin after this long to move warm-up tasks once caught up (None: no probing rebalance)
    probe_after_ms: int | None


def _pairs(tasks: Iterable[TaskId]) -> list[list[int]]:
    return [[sub, partition] for sub, partition in sorted(tasks)]


def _tasks(pairs: Iterable[Sequence[int]]) -> frozenset[TaskId]:
    return frozenset((int(p[0]), int(p[1])) for p in pairs)


def encode_subscription(process_id: str, endpoint: str | None, local: MemberState) -> bytes:
    return orjson.dumps({
        "v": USER_DATA_VERSION, "pid": process_id, "ep": endpoint,
        "prev": _pairs(local.previous_active),
        "off": [[sub, partition, offset] for (sub, partition), offset in sorted(local.offsets.items())],
    })


def decode_subscription(data: bytes) -> tuple[str | None, str | None, MemberState]:
    """(process id, endpoint, state); a member without (readable) user data reports nothing."""
    try:
        body = orjson.loads(data) if data else {}
        offsets = {(int(s), int(p)): int(o) for s, p, o in body.get("off", [])}
        state = MemberState(_tasks(body.get("prev", [])), offsets)
        return body.get("pid"), body.get("ep"), state
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as error:
        log.warning("ignoring unreadable subscription user data (%r); the member counts as one without state", error)
        return None, None, MemberState()


def encode_assignment(standby: Iterable[TaskId], warmup: Iterable[TaskId],
                      active_by_endpoint: Mapping[str, Iterable[TaskId]],
                      standby_by_endpoint: Mapping[str, Iterable[TaskId]], probe_after_ms: int | None) -> bytes:
    return orjson.dumps({
        "v": USER_DATA_VERSION, "standby": _pairs(standby), "warmup": _pairs(warmup),
        "hosts": {ep: {"a": _pairs(active_by_endpoint.get(ep, ())), "s": _pairs(standby_by_endpoint.get(ep, ()))}
                  for ep in sorted(set(active_by_endpoint) | set(standby_by_endpoint))},
        "probe": probe_after_ms,
    })


def decode_assignment(data: bytes) -> AssignedTasks:
    body = orjson.loads(data) if data else {}
    hosts = body.get("hosts", {})
    return AssignedTasks(
        standby=_tasks(body.get("standby", [])),
        warmup=_tasks(body.get("warmup", [])),
        active_by_endpoint={ep: _tasks(entry.get("a", [])) for ep, entry in hosts.items()},
        standby_by_endpoint={ep: _tasks(entry.get("s", [])) for ep, entry in hosts.items()},
        probe_after_ms=body.get("probe"),
    )


class StreamsAssignor:
    """One per worker: reports the worker's local tasks and, as leader, assigns tasks to the group."""

    name = "streamer"
    version = 0

    def __init__(
        self,
        sources: Mapping[int, Sequence[str]],
        stateful: Iterable[int],
        process_id: str,
        endpoint: str | None,
        local_tasks: Callable[[], MemberState],
        settings: AssignmentSettings,
        probing_rebalance_interval_ms: int,
    ) -> None:
        #: sub-topology id -> its source topics (co-partitioned)
        self.sources = {sub: list(topics) for sub, topics in sources.items()}
        self.stateful_subtopologies = frozenset(stateful)
        self.process_id = process_id
        self.endpoint = endpoint
        self.local_tasks = local_tasks
        self.settings = settings
        self.probing_rebalance_interval_ms = probing_rebalance_interval_ms
        #: changelog end offset sums per task, refreshed by the worker before it joins
        self.end_offsets: Mapping[TaskId, int] = {}
        #: what ``on_assignment`` last received; the worker clears it on revocation
        self.latest: AssignedTasks | None = None
        self._subscription: bytes | None = None

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """The subscription, the same bytes for every join until an assignment arrives.

        The coordinator starts another rebalance when a member rejoins with different
        metadata while it completes one; offsets that moved between two join attempts
        must not keep a group rebalancing.
        """
        if self._subscription is None:
            self._subscription = encode_subscription(self.process_id, self.endpoint, self.local_tasks())
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), self._subscription)

    def tasks(self, cluster: ClusterMetadata) -> dict[TaskId, list[tuple[str, int]]]:
        """Every task with its input partitions, from the partition counts the cluster metadata knows."""
        found: dict[TaskId, list[tuple[str, int]]] = {}
        for sub, topics in sorted(self.sources.items()):
            counts = {topic: len(cluster.partitions_for_topic(topic) or ()) for topic in topics}
            for topic, count in counts.items():
                for partition in range(count):
                    found.setdefault((sub, partition), []).append((topic, partition))
        return found

    def assign(self, cluster: ClusterMetadata,
               members: Mapping[str, ConsumerProtocolMemberMetadata]) -> dict[str, ConsumerProtocolMemberAssignment]:
        partitions_of = self.tasks(cluster)
        states: dict[str, MemberState] = {}
        endpoints: dict[str, str] = {}
        leader: str | None = None
        for member_id, metadata in members.items():
            process_id, endpoint, state = decode_subscription(metadata.user_data)
            states[member_id] = state
            if endpoint:
                endpoints[member_id] = endpoint
            if process_id == self.process_id:
                leader = member_id
        stateful = [task for task in partitions_of if task[0] in self.stateful_subtopologies]
        result = assign_tasks(sorted(partitions_of), stateful, states, self.end_offsets, self.settings)
        active_by_endpoint: dict[str, set[TaskId]] = {}
        standby_by_endpoint: dict[str, set[TaskId]] = {}
        for member_id, endpoint in endpoints.items():
            active_by_endpoint.setdefault(endpoint, set()).update(result.active[member_id])
            standby_by_endpoint.setdefault(endpoint, set()).update(result.standby[member_id])
        probe = self.probing_rebalance_interval_ms if result.needs_probing else None
        if result.needs_probing:
            log.info("warm-up replicas %s; a probing rebalance follows in %d ms",
                     {m: sorted(t) for m, t in result.warmup.items() if t}, self.probing_rebalance_interval_ms)
        assignments = {}
        for member_id in members:
            by_topic: dict[str, list[int]] = {}
            for task in sorted(result.active[member_id]):
                for topic, partition in partitions_of[task]:
                    by_topic.setdefault(topic, []).append(partition)
            data = encode_assignment(result.standby[member_id], result.warmup[member_id], active_by_endpoint,
                                     standby_by_endpoint, probe if member_id == leader else None)
            assignments[member_id] = ConsumerProtocolMemberAssignment(self.version, sorted(by_topic.items()), data)
        return assignments

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        self._subscription = None  # the next join reports what this assignment changes
        try:
            self.latest = decode_assignment(assignment.user_data)
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as error:
            log.warning("unreadable assignment user data (%r); running the assigned partitions without standbys",
                        error)
            self.latest = decode_assignment(b"")
