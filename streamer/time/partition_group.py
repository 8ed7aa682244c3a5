"""Timestamp-ordered input for a task that reads several partitions (Kafka Streams' PartitionGroup).

Each input partition has a queue of fetched chunks. The head chunk of a partition is
deserialized (with its timestamp extractor) only when it is needed; the task then
takes a slice: the records of the partition with the lowest head timestamp, for as long
as they stay at or below the lowest head of the other partitions. A slice is one batch
for the processors, so ordering costs per record only a comparison.

An empty partition holds the others back until the task knows none of its records
are waiting on the broker (its lag is 0), then for ``max_task_idle_ms`` of wall-clock
time (Kafka Streams' ``max.task.idle.ms`` semantics; -1 never waits, not even for the
lag); after that the others are processed without it ("enforced processing").
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Generic, Hashable, Iterable, NamedTuple, TypeVar

from streamer.record import Record

P = TypeVar("P", bound=Hashable)
#: Never wait for an empty partition, not even to learn its lag.
IDLE_DISABLED = -1
#: ``intake(partition, messages) -> (records, timestamps)``: deserialize a chunk; drops what is invalid.
Intake = Callable[[Any, list[Any]], tuple[list[Record], list[int]]]
#: ``lag(partition)``: records of the partition still on the broker, None while unknown.
Lag = Callable[[Any], "int | None"]


class Slice(NamedTuple):
    """Records of one partition to process as one batch."""

    partition: Any
    records: list[Record]
    timestamps: list[int]
    #: the raw messages of the chunk the slice comes from (error handling looks them up by offset)
    messages: list[Any]


class _Queue:
    __slots__ = ("chunks", "messages", "records", "timestamps", "position", "buffered")

    def __init__(self) -> None:
        self.chunks: collections.deque[list[Any]] = collections.deque()
        self.messages: list[Any] = []
        self.records: list[Record] = []
        self.timestamps: list[int] = []
        self.position = 0
        self.buffered = 0


class PartitionGroup(Generic[P]):
    """Input queues of one task's partitions, merged in timestamp order; see the module docstring."""

    def __init__(self, partitions: Iterable[P], max_idle_ms: int, intake: Intake) -> None:
        self._queues: dict[P, _Queue] = {p: _Queue() for p in partitions}
        self._order = {p: i for i, p in enumerate(self._queues)}
        self.max_idle_ms = max_idle_ms
        self._intake = intake
        self._deadlines: dict[P, int] = {}
        #: partition -> next offset to read once what was taken is processed (what the task commits)
        self.next_offsets: dict[P, int] = {}

    @property
    def partitions(self) -> list[P]:
        return list(self._queues)

    def add(self, partition: P, messages: list[Any]) -> None:
        """Queue a fetched chunk (cheap: deserialized only once it is at the head)."""
        queue = self._queues.get(partition)
        if queue is None:  # a topic matched by a pattern after the task was built
            queue = self._queues[partition] = _Queue()
            self._order[partition] = len(self._order)
        queue.chunks.append(messages)
        queue.buffered += len(messages)

    def buffered(self, partition: P) -> int:
        """Fetched records of the partition not yet deserialized (what backpressure counts)."""
        queue = self._queues.get(partition)
        return 0 if queue is None else queue.buffered

    def is_empty(self, partition: P) -> bool:
        queue = self._queues[partition]
        return queue.position >= len(queue.records) and not queue.chunks

    def _head(self, partition: P, queue: _Queue) -> tuple[int, int] | None:
        """(head timestamp, partition order) of the queue, deserializing chunks until it has a record."""
        while queue.position >= len(queue.records):
            if not queue.chunks:
                return None
            messages = queue.chunks.popleft()
            queue.buffered -= len(messages)
            queue.messages = messages
            queue.records, queue.timestamps = self._intake(partition, messages)
            queue.position = 0
            if not queue.records and messages:  # nothing valid in it: done with, the offset moves on
                self.next_offsets[partition] = messages[-1].offset + 1
        return queue.timestamps[queue.position], self._order[partition]

    def next_slice(self, now_ms: int, lag: Lag) -> Slice | None:
        """The next batch to process in timestamp order, or None while the task must wait."""
        heads: dict[P, tuple[int, int]] = {}
        waiting = False
        for partition, queue in self._queues.items():
            head = self._head(partition, queue)
            if head is not None:
                heads[partition] = head
                self._deadlines.pop(partition, None)
            elif not self._may_skip(partition, now_ms, lag):
                waiting = True
        if not heads:
            # Nothing waits to be processed, so no idle timer runs: one starts again once some
            # partition has records while another is empty (else the task would wake at once, forever).
            self._deadlines.clear()
            return None
        if waiting:
            return None
        chosen = min(heads, key=heads.__getitem__)
        del heads[chosen]
        return self._take(chosen, min(heads.values(), default=None))

    def _may_skip(self, partition: P, now_ms: int, lag: Lag) -> bool:
        """May the others go on without this empty partition (Kafka Streams' readiness rule)?"""
        if self.max_idle_ms == IDLE_DISABLED:
            return True
        behind = lag(partition)
        if behind is None or behind > 0:  # unknown, or records are on their way: wait for them
            self._deadlines.pop(partition, None)
            return False
        deadline = self._deadlines.setdefault(partition, now_ms + self.max_idle_ms)
        return now_ms >= deadline

    def next_deadline(self) -> int | None:
        """Wall-clock time (ms) at which a waiting task should look again, if an idle timer runs."""
        return min(self._deadlines.values(), default=None)

    def _take(self, partition: P, bound: tuple[int, int] | None) -> Slice:
        queue = self._queues[partition]
        start = queue.position
        end = len(queue.records)
        if bound is not None:
            order = self._order[partition]
            timestamps = queue.timestamps
            index = start + 1
            while index < end and (timestamps[index], order) < bound:
                index += 1
            end = index
        queue.position = end
        records = queue.records
        self.next_offsets[partition] = records[end].offset if end < len(records) else queue.messages[-1].offset + 1
        return Slice(partition, records[start:end], queue.timestamps[start:end], queue.messages)
