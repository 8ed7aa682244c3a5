"""Which member runs which task, as active or standby: the streams assignor's algorithm, pure.

Modelled on Kafka Streams' high-availability task assignor (KIP-441):

1. A balanced target: every member gets ``n // m`` or ``n // m + 1`` tasks. A task stays
   with the member that ran it as active (sticky) as far as the balance allows; the
   others go, stateful ones first, to a member with room whose local state of the task
   is the least behind its changelog, else to the least loaded one.
2. Warm-ups: a stateful task whose target has no caught-up copy (lag above
   ``acceptable_recovery_lag``) stays active on a member that is caught up (the previous
   owner first), and the target gets a warm-up replica to catch up in the background. A
   probing rebalance later moves the task once the warm-up is caught up. Without any
   caught-up member the task goes to the one least behind.
3. Standbys: ``num_standby_replicas`` copies of every stateful task on members other than
   its active one, preferring members with the least lag, then the least loaded.

Lags come from what members report: the changelog offsets (summed over the task's
changelog partitions) of the state they have locally, against the end offsets the
leader knows; a member without state has the whole changelog to restore. A member that
ran the task as active is caught up by definition.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

#: (sub-topology id, partition), as in Kafka Streams' TaskId.
TaskId = tuple[int, int]
#: The lag of a member without local state of a task whose changelog end nobody knows.
NO_STATE = float("inf")


@dataclass(frozen=True)
class MemberState:
    """What one member reports when it joins: the tasks it ran as active, the offsets of its local state."""

    #: tasks it ran as active in the previous generation
    previous_active: frozenset[TaskId] = frozenset()
    #: offset sum of the local state it has per task (next changelog offsets, summed)
    offsets: Mapping[TaskId, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AssignmentSettings:
    num_standby_replicas: int = 0
    acceptable_recovery_lag: int = 10_000
    max_warmup_replicas: int = 2


@dataclass
class TaskAssignment:
    """Per member: active tasks, standby tasks (warm-ups included) and which of those are warm-ups."""

    active: dict[str, set[TaskId]]
    standby: dict[str, set[TaskId]]
    warmup: dict[str, set[TaskId]]
    #: task -> the member it moves to once that member's copy caught up
    pending_moves: dict[TaskId, str] = field(default_factory=dict)

    @property
    def needs_probing(self) -> bool:
        """Tasks wait for a copy to catch up: a later rebalance should look whether they can move."""
        return bool(self.pending_moves)


class _Lags:
    """Lag of each member's local state per stateful task; 0 for the task's previous active owner."""

    def __init__(self, members: Mapping[str, MemberState], stateful: Collection[TaskId],
                 end_offsets: Mapping[TaskId, int]) -> None:
        self.members = members
        self.stateful = stateful
        self.ends = dict(end_offsets)
        for state in members.values():  # a reported offset is a lower bound of the end
            for task, offset in state.offsets.items():
                if offset > self.ends.get(task, -1):
                    self.ends[task] = offset

    def of(self, member: str, task: TaskId) -> float:
        if task not in self.stateful:
            return 0
        state = self.members[member]
        if task in state.previous_active:
            return 0
        end = self.ends.get(task)
        offset = state.offsets.get(task)
        if end is None:  # nobody knows the changelog's end
            return NO_STATE if offset is None else 0
        return max(0, end - (offset or 0))  # no state: the whole changelog to restore


def assign_tasks(tasks: Sequence[TaskId], stateful: Collection[TaskId], members: Mapping[str, MemberState],
                 end_offsets: Mapping[TaskId, int], settings: AssignmentSettings) -> TaskAssignment:
    """Assign every task of ``tasks`` to one of ``members``; see the module docstring."""
    names = sorted(members)
    active: dict[str, set[TaskId]] = {name: set() for name in names}
    standby: dict[str, set[TaskId]] = {name: set() for name in names}
    warmup: dict[str, set[TaskId]] = {name: set() for name in names}
    if not names:
        return TaskAssignment(active, standby, warmup)
    stateful_set = set(stateful)
    lags = _Lags(members, stateful_set, end_offsets)
    target = _balanced_target(sorted(tasks), stateful_set, names, members, lags)
    owner: dict[TaskId, str] = {}
    moves: dict[TaskId, str] = {}  # task -> the balanced target it should move to once caught up
    for task, member in sorted(target.items()):
        chosen = member
        if task in stateful_set and lags.of(member, task) > settings.acceptable_recovery_lag:
            chosen = _caught_up_owner(task, member, names, members, lags, settings.acceptable_recovery_lag)
            if chosen != member:
                moves[task] = member
        owner[task] = chosen
        active[chosen].add(task)
    _assign_standbys(owner, stateful_set, names, lags, moves, settings.num_standby_replicas, active, standby)
    budget = settings.max_warmup_replicas
    for task, destination in sorted(moves.items()):
        if task in standby[destination]:
            continue  # a standby there is already catching up
        if budget <= 0:
            break
        standby[destination].add(task)
        warmup[destination].add(task)
        budget -= 1
    return TaskAssignment(active, standby, warmup, moves)


def _balanced_target(tasks: list[TaskId], stateful: set[TaskId], names: list[str],
                     members: Mapping[str, MemberState], lags: _Lags) -> dict[TaskId, str]:
    """Each task's member in a balanced assignment that keeps as many previous owners as it can."""
    base, extra = divmod(len(tasks), len(names))
    count = dict.fromkeys(names, 0)
    extras_left = extra
    target: dict[TaskId, str] = {}
    known = set(tasks)
    previous: dict[str, list[TaskId]] = {name: [] for name in names}
    for name in names:  # a task two members claim (a zombie's report) goes to the one further ahead
        for task in sorted(members[name].previous_active & known):
            rival = target.get(task)
            if rival is None or members[name].offsets.get(task, -1) > members[rival].offsets.get(task, -1):
                target[task] = name
    for task, name in target.items():
        previous[name].append(task)
    target.clear()
    for name in names:  # keep up to the base quota of previous tasks, then one more while extras last
        for task in sorted(previous[name])[:base]:
            target[task] = name
            count[name] += 1
    for name in names:
        if extras_left and len(previous[name]) > base:
            task = sorted(previous[name])[base]
            target[task] = name
            count[name] += 1
            extras_left -= 1
    rest = [t for t in tasks if t not in target]
    rest.sort(key=lambda t: t not in stateful)  # stateful tasks choose first
    for task in rest:
        limit = base + 1 if extras_left > 0 else base
        candidates = [name for name in names if count[name] < limit]
        if task in stateful:
            chosen = min(candidates, key=lambda name: (lags.of(name, task), count[name], name))
        else:
            chosen = min(candidates, key=lambda name: (count[name], name))
        if count[chosen] == base:
            extras_left -= 1
        count[chosen] += 1
        target[task] = chosen
    return target


def _caught_up_owner(task: TaskId, destination: str, names: list[str], members: Mapping[str, MemberState],
                     lags: _Lags, acceptable: int) -> str:
    """Where a task whose balanced target is behind runs meanwhile: a caught-up member, else the least behind."""
    previous = [name for name in names if task in members[name].previous_active]
    if previous:
        return previous[0]
    best = min(names, key=lambda name: (lags.of(name, task), name))
    if lags.of(best, task) < lags.of(destination, task):
        return best
    return destination


def _assign_standbys(owner: Mapping[TaskId, str], stateful: set[TaskId], names: list[str], lags: _Lags,
                     moves: Mapping[TaskId, str], replicas: int, active: Mapping[str, set[TaskId]],
                     standby: dict[str, set[TaskId]]) -> None:
    """Put ``replicas`` standbys of each stateful task on members other than its active one."""
    wanted = min(replicas, len(names) - 1)
    if wanted <= 0:
        return
    load = {name: len(active[name]) for name in names}
    for task in sorted(t for t in owner if t in stateful):
        others = [name for name in names if name != owner[task]]
        destination = moves.get(task)
        others.sort(key=lambda name: (name != destination, lags.of(name, task), load[name], name))
        for name in others[:wanted]:
            standby[name].add(task)
            load[name] += 1
