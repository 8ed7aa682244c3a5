"""The streams assignor's algorithm and wire format, without a broker."""

from __future__ import annotations

import time

from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from streamer.runtime.assignor import (
    StreamsAssignor,
    decode_assignment,
    decode_subscription,
    encode_subscription,
)
from streamer.runtime.task_assignment import AssignmentSettings, MemberState, TaskAssignment, assign_tasks

SETTINGS = AssignmentSettings()


def tasks_of(subs: int, partitions: int) -> list[tuple[int, int]]:
    return [(s, p) for s in range(subs) for p in range(partitions)]


def check_complete(result: TaskAssignment, tasks: list[tuple[int, int]]) -> None:
    owners = [t for ts in result.active.values() for t in ts]
    assert sorted(owners) == sorted(tasks), "every task active exactly once"
    for member, standbys in result.standby.items():
        assert not standbys & result.active[member], f"{member} has a standby of its own active task"


def counts(result: TaskAssignment) -> list[int]:
    return sorted(len(ts) for ts in result.active.values())


def test_fresh_group_is_balanced() -> None:
    tasks = tasks_of(2, 6)
    result = assign_tasks(tasks, tasks, {m: MemberState() for m in "abc"}, {}, SETTINGS)
    check_complete(result, tasks)
    assert counts(result) == [4, 4, 4]
    assert not result.needs_probing


def test_uneven_task_count_differs_by_one_at_most() -> None:
    tasks = tasks_of(1, 10) + [(1, 0)]
    result = assign_tasks(tasks, [], {m: MemberState() for m in "abcd"}, {}, SETTINGS)
    check_complete(result, tasks)
    assert counts(result) == [2, 3, 3, 3]


def test_previous_owners_keep_their_tasks() -> None:
    tasks = tasks_of(1, 6)
    members = {"a": MemberState(frozenset({(0, 1), (0, 3), (0, 5)})),
               "b": MemberState(frozenset({(0, 0), (0, 2), (0, 4)}))}
    result = assign_tasks(tasks, tasks, members, {}, SETTINGS)
    assert result.active == {"a": {(0, 1), (0, 3), (0, 5)}, "b": {(0, 0), (0, 2), (0, 4)}}


def test_an_unowned_task_goes_to_the_member_with_its_state() -> None:
    tasks = tasks_of(1, 2)
    members = {"a": MemberState(offsets={(0, 1): 990}), "b": MemberState(offsets={(0, 0): 500, (0, 1): 100})}
    result = assign_tasks(tasks, tasks, members, {(0, 0): 500, (0, 1): 1000}, SETTINGS)
    assert result.active == {"a": {(0, 1)}, "b": {(0, 0)}}


def test_stateless_tasks_move_at_once_when_members_join() -> None:
    tasks = tasks_of(1, 6)
    members = {"a": MemberState(frozenset(tasks)), "b": MemberState(), "c": MemberState()}
    result = assign_tasks(tasks, [], members, {}, SETTINGS)
    assert counts(result) == [2, 2, 2]
    assert len(result.active["a"]) == 2 and result.active["a"] <= set(tasks)
    assert not result.needs_probing


def test_stateful_tasks_warm_up_on_joining_members_before_they_move() -> None:
    tasks = tasks_of(1, 6)
    ends = {t: 1_000_000 for t in tasks}
    members = {"a": MemberState(frozenset(tasks), {t: 1_000_000 for t in tasks}), "b": MemberState(),
               "c": MemberState()}
    result = assign_tasks(tasks, tasks, members, ends, SETTINGS)
    assert result.active["a"] == set(tasks), "nothing moves to a member that would have to restore it all"
    warmups = result.warmup["b"] | result.warmup["c"]
    assert len(warmups) == SETTINGS.max_warmup_replicas
    assert result.standby["b"] == result.warmup["b"] and result.standby["c"] == result.warmup["c"]
    assert result.needs_probing
    # A probing rebalance later: the warm-ups caught up to within the acceptable lag, so they move.
    offsets = {"b": {t: 999_000 for t in result.warmup["b"]}, "c": {t: 999_000 for t in result.warmup["c"]}}
    later = {"a": MemberState(frozenset(tasks), {t: 1_000_000 for t in tasks}),
             "b": MemberState(offsets=offsets["b"]), "c": MemberState(offsets=offsets["c"])}
    probed = assign_tasks(tasks, tasks, later, ends, SETTINGS)
    check_complete(probed, tasks)
    assert probed.active["b"] >= result.warmup["b"] and probed.active["c"] >= result.warmup["c"]
    assert len(probed.active["a"]) == 6 - len(warmups)
    assert probed.needs_probing, "the tasks not warmed up yet get their warm-ups now"


def test_warm_up_budget_counts_over_the_whole_group() -> None:
    tasks = tasks_of(1, 20)
    ends = {t: 50_000 for t in tasks}
    members = {"a": MemberState(frozenset(tasks), dict(ends)), **{m: MemberState() for m in "bcde"}}
    result = assign_tasks(tasks, tasks, members, ends, AssignmentSettings(max_warmup_replicas=3))
    assert sum(len(w) for w in result.warmup.values()) == 3
    assert result.active["a"] == set(tasks)


def test_standbys_are_on_other_members_and_prefer_state() -> None:
    tasks = tasks_of(2, 4)
    members = {"a": MemberState(), "b": MemberState(), "c": MemberState(offsets={t: 10 for t in tasks})}
    result = assign_tasks(tasks, tasks, members, {t: 10 for t in tasks}, AssignmentSettings(num_standby_replicas=1))
    check_complete(result, tasks)
    for task in tasks:
        holders = [m for m, ts in result.standby.items() if task in ts]
        assert len(holders) == 1
        if task not in result.active["c"]:
            assert holders == ["c"], "the member with the state keeps the standby"


def test_more_standbys_than_members_allow() -> None:
    tasks = tasks_of(1, 3)
    result = assign_tasks(tasks, tasks, {"a": MemberState(), "b": MemberState()}, {},
                          AssignmentSettings(num_standby_replicas=3))
    check_complete(result, tasks)
    assert all(len([m for m in "ab" if t in result.standby[m]]) == 1 for t in tasks)


def test_failover_goes_to_the_standby() -> None:
    tasks = tasks_of(1, 4)
    ends = {t: 100_000 for t in tasks}
    # "a" ran 0_0 and 0_1 and died; "b" kept standbys of them and ran 0_2, 0_3; "c" ran nothing.
    members = {"b": MemberState(frozenset({(0, 2), (0, 3)}), {(0, 0): 99_990, (0, 1): 99_990}),
               "c": MemberState()}
    result = assign_tasks(tasks, tasks, members, ends, AssignmentSettings(num_standby_replicas=1))
    check_complete(result, tasks)
    # balance asks for two each; "c" has no state, so the failed-over tasks run on "b" meanwhile
    assert result.active["b"] == set(tasks)
    assert result.standby["c"] >= {(0, 0), (0, 1)}, "the standby catches up where the tasks belong"
    assert result.pending_moves == {(0, 0): "c", (0, 1): "c"} and result.needs_probing


def test_member_leaving_spreads_its_tasks() -> None:
    tasks = tasks_of(1, 9)
    members = {"a": MemberState(frozenset(tasks[:3])), "b": MemberState(frozenset(tasks[3:6]))}
    result = assign_tasks(tasks, [], members, {}, SETTINGS)
    assert result.active["a"] >= set(tasks[:3]) and result.active["b"] >= set(tasks[3:6])
    assert counts(result) == [4, 5]


def test_two_members_claiming_a_task_leave_it_to_the_one_further_ahead() -> None:
    tasks = [(0, 0)]
    members = {"a": MemberState(frozenset(tasks), {(0, 0): 5}), "b": MemberState(frozenset(tasks), {(0, 0): 9})}
    result = assign_tasks(tasks, tasks, members, {}, SETTINGS)
    assert result.active == {"a": set(), "b": {(0, 0)}}


def test_thousand_tasks_on_ten_members_is_quick() -> None:
    tasks = tasks_of(4, 250)
    previous = {f"m{i}": frozenset(tasks[i::12]) for i in range(10)}
    members = {m: MemberState(prev, {t: 1000 for t in tasks[::7]}) for m, prev in previous.items()}
    began = time.perf_counter()
    result = assign_tasks(tasks, tasks[:500], members, {t: 1000 for t in tasks},
                          AssignmentSettings(num_standby_replicas=2))
    elapsed = time.perf_counter() - began
    check_complete(result, tasks)
    assert max(counts(result)) - min(counts(result)) <= 1 or result.needs_probing
    assert elapsed < 1.0, f"assigning 1000 tasks took {elapsed:.2f}s"


class FakeCluster:
    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.partitions[topic])) if topic in self.partitions else None


def test_subscription_round_trip() -> None:
    local = MemberState(frozenset({(0, 1)}), {(1, 2): 77})
    pid, endpoint, state = decode_subscription(encode_subscription("p1", "host:1", local))
    assert (pid, endpoint) == ("p1", "host:1")
    assert state.previous_active == {(0, 1)} and state.offsets == {(1, 2): 77}
    assert decode_subscription(b"not json")[2] == MemberState()
    assert decode_subscription(b"")[2] == MemberState()


def test_assignor_keeps_copartitioned_inputs_together_and_maps_endpoints() -> None:
    def assignor(pid: str, endpoint: str) -> StreamsAssignor:
        return StreamsAssignor({0: ["left", "right"], 1: ["rep"]}, [1], pid, endpoint, MemberState,
                               AssignmentSettings(num_standby_replicas=1), 50)

    workers = {"m1": assignor("p1", "h1:1"), "m2": assignor("p2", "h2:1")}
    subscriptions = {m: a.metadata(["left", "right", "rep"]) for m, a in workers.items()}
    members = {m: ConsumerProtocolMemberMetadata.decode(s.encode()) for m, s in subscriptions.items()}
    cluster = FakeCluster({"left": 3, "right": 3, "rep": 2})
    assignments = workers["m1"].assign(cluster, members)  # type: ignore[arg-type]
    owned: dict[str, set[tuple[str, int]]] = {}
    for member, assignment in assignments.items():
        workers[member].on_assignment(assignment)
        owned[member] = {(topic, p) for topic, parts in assignment.assignment for p in parts}
    for partition in range(3):
        holders = [m for m, tps in owned.items() if ("left", partition) in tps]
        assert holders == [m for m, tps in owned.items() if ("right", partition) in tps] and len(holders) == 1
    assert owned["m1"] | owned["m2"] == {("left", p) for p in range(3)} | {("right", p) for p in range(3)} | {
        ("rep", 0), ("rep", 1)}
    first, second = workers["m1"].latest, workers["m2"].latest
    assert first is not None and second is not None
    assert first.active_by_endpoint == second.active_by_endpoint
    assert set(first.active_by_endpoint) == {"h1:1", "h2:1"}
    assert first.standby | second.standby == {(1, 0), (1, 1)}, "only the stateful sub-topology has standbys"
    assert first.probe_after_ms is None and second.probe_after_ms is None
    assert decode_assignment(b"").standby == frozenset()
