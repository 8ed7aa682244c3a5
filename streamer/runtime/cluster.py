"""Which worker holds what: the application's endpoints and their tasks, for interactive queries.

Kafka Streams' ``StreamsMetadataState``: each worker advertises its ``application_server``
(host:port) to the group, and the assignment tells every member which endpoint runs which
active and standby tasks. A key of store ``s`` lives in the task of ``s``'s sub-topology
whose partition is the key's: murmur2 of the key bytes (the store's key serde) modulo
the partition count of that sub-topology's source topics, exactly as the records were
placed (``streamer.partitioner``). So any worker can tell where a key is and forward the
query there.

Between a revocation (``mark_rebalancing``) and the next ``update`` the map is stale, and
lookups say so instead of answering. Until the first ``update`` (one worker, or a group
whose assignor does not share endpoints) the map holds this worker's own running tasks
only: keys of other tasks have an unknown owner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from streamer.errors import TopologyError
from streamer.partitioner import default_partition
from streamer.runtime.task_core import task_id_of
from streamer.topology.topology import StoreSpec, SubTopology, Topology

#: (sub-topology id, partition)
TaskId = tuple[int, int]


@dataclass(frozen=True)
class KeyMetadata:
    """Where one key of a store lives (Kafka Streams' ``KeyQueryMetadata``); ``active`` None: unknown now."""

    store: str
    partition: int
    task: TaskId
    active: str | None
    standbys: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"store": self.store, "partition": self.partition, "task": task_id_of(*self.task),
                "active": self.active, "standbys": list(self.standbys)}


class ClusterMetadata:
    """The endpoint -> tasks map of the application and the store -> sub-topology lookups over it."""

    def __init__(self, topology: Topology, application_id: str, local_endpoint: str | None) -> None:
        self.topology = topology
        self.application_id = application_id
        self.local_endpoint = local_endpoint
        #: this worker's running tasks; the query server sets it (the map before any ``update``)
        self.local_tasks: Callable[[], set[TaskId]] = set
        self._sub_of_store: dict[str, SubTopology] = {}
        self._specs: dict[str, StoreSpec] = {}
        for sub in topology.subtopologies:
            for spec in sub.stores:
                self._sub_of_store.setdefault(spec.name, sub)
                self._specs.setdefault(spec.name, spec)
        self._global = {spec.name: spec.store for spec in topology.global_stores}
        self._partitions: dict[int, int] = {}
        self._active: dict[str, set[TaskId]] = {}
        self._standby: dict[str, set[TaskId]] = {}
        self._owner: dict[TaskId, str] = {}
        self._updated = False
        self._rebalancing = False

    # -- what the worker tells it ----------------------------------------------------------

    def set_partition_counts(self, counts: Mapping[str, int]) -> None:
        """Topic -> partition count as the worker found it at start (source topics of every sub-topology)."""
        self._partitions = {}
        for sub in self.topology.subtopologies:
            known = [counts[topic] for topic in sub.source_topics(self.application_id) if topic in counts]
            if known:
                self._partitions[sub.id] = max(known)

    def update(self, active: Mapping[str, set[TaskId]], standby: Mapping[str, set[TaskId]]) -> None:
        """The assignment's endpoint -> active and standby tasks; ends a rebalance."""
        self._active = {endpoint: set(tasks) for endpoint, tasks in active.items()}
        self._standby = {endpoint: set(tasks) for endpoint, tasks in standby.items()}
        self._owner = {task: endpoint for endpoint, tasks in self._active.items() for task in tasks}
        self._updated = True
        self._rebalancing = False

    def mark_rebalancing(self) -> None:
        """Tasks are moving: lookups answer "retry" until the next ``update``."""
        self._rebalancing = True

    @property
    def rebalancing(self) -> bool:
        return self._rebalancing

    @property
    def assignment_known(self) -> bool:
        """True once an assignment shared every member's endpoints (``update`` was called)."""
        return self._updated

    # -- lookups ---------------------------------------------------------------------------

    def spec(self, store: str) -> StoreSpec:
        """The spec of a store that tasks or global tables keep; a clear error naming the known ones otherwise."""
        spec = self._specs.get(store) or self._global.get(store)
        if spec is None:
            known = sorted(set(self._specs) | set(self._global))
            raise TopologyError(f"the topology has no store {store!r}; it has {known}")
        return spec

    def store_kinds(self) -> dict[str, str]:
        """Every queryable store -> its kind (key_value, window, session); global tables' are key_value."""
        kinds: dict[str, str] = {name: spec.kind for name, spec in self._global.items()}
        kinds.update((name, spec.kind) for name, spec in self._specs.items() if spec.kind != "buffer")
        return dict(sorted(kinds.items()))

    def is_global(self, store: str) -> bool:
        """A global table's store: every worker keeps it whole, so any worker answers for any key."""
        return store in self._global and store not in self._specs

    def tasks_of(self, store: str) -> list[TaskId]:
        """Every task that holds a part of ``store``: one per partition of its sub-topology."""
        sub = self._subtopology(store)
        return [(sub.id, partition) for partition in range(self._partition_count(sub))]

    def task_for_key(self, store: str, key_bytes: bytes) -> TaskId:
        """The task whose partition holds the serialized key, placed as Kafka's default partitioner does."""
        sub = self._subtopology(store)
        return sub.id, default_partition(key_bytes, self._partition_count(sub))

    def active_endpoint(self, task: TaskId) -> str | None:
        """The endpoint running ``task`` now, or None if no one is known to (moving, or not yet told)."""
        if self._rebalancing:
            return None
        if not self._updated:
            return self.local_endpoint if task in self.local_tasks() else None
        return self._owner.get(task)

    def standby_endpoints(self, task: TaskId) -> tuple[str, ...]:
        return tuple(sorted(endpoint for endpoint, tasks in self._standby.items() if task in tasks))

    def key_metadata(self, store: str, key_bytes: bytes) -> KeyMetadata:
        """Kafka Streams' ``queryMetadataForKey``: the key's partition, its active endpoint and standbys."""
        task = self.task_for_key(store, key_bytes)
        return KeyMetadata(store, task[1], task, self.active_endpoint(task), self.standby_endpoints(task))

    def hosts(self) -> list[dict[str, object]]:
        """Kafka Streams' ``metadataForAllStreamsClients``: per endpoint, its stores' active and standby partitions."""
        active = self._active if self._updated else (
            {self.local_endpoint: self.local_tasks()} if self.local_endpoint is not None else {})
        standby = self._standby if self._updated else {}
        out: list[dict[str, object]] = []
        for endpoint in sorted(set(active) | set(standby)):
            mine, spare = active.get(endpoint, set()), standby.get(endpoint, set())
            out.append({
                "endpoint": endpoint,
                "active_tasks": sorted(task_id_of(*task) for task in mine),
                "standby_tasks": sorted(task_id_of(*task) for task in spare),
                "active": self._store_partitions(mine),
                "standby": self._store_partitions(spare),
                "global_stores": sorted(self._global),
            })
        return out

    def _store_partitions(self, tasks: set[TaskId]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for name, sub in self._sub_of_store.items():
            partitions = sorted(partition for sub_id, partition in tasks if sub_id == sub.id)
            if partitions and self._specs[name].kind != "buffer":
                out[name] = partitions
        return dict(sorted(out.items()))

    def _subtopology(self, store: str) -> SubTopology:
        sub = self._sub_of_store.get(store)
        if sub is None:
            self.spec(store)  # names the known stores
            raise TopologyError(f"store {store!r} is a global table's: every worker holds all of it")
        return sub

    def _partition_count(self, sub: SubTopology) -> int:
        count = self._partitions.get(sub.id)
        if count is None:
            raise TopologyError(f"the partition count of sub-topology {sub.id}'s source topics is not known yet: "
                                "the worker has not looked its topics up (it is starting)")
        return count
