"""A task in a worker: one sub-topology working on one partition of its input topics.

On top of the task core it owns the fetched input not yet processed, the input
offsets it consumed (committed with its time as offset metadata) and its output
batches. A task with one input partition processes its queue of fetched batches in
offset order, a batch at a time; one with several takes timestamp-ordered slices from
its partition group. Either way it works under ``lock``, so the worker can commit
between batches without ever seeing half a batch.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Coroutine, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from streamer.config import StreamerConfig
from streamer.processors.api import PunctuationType
from streamer.runtime.collector import RecordCollector
from streamer.runtime.metrics import WorkerMetrics
from streamer.runtime.production import OutputTopics, ProductionErrorHandler
from streamer.runtime.task_core import TaskCore, task_id_of
from streamer.runtime.task_stores import TaskStores
from streamer.time.partition_group import PartitionGroup
from streamer.topology.topology import SubTopology

#: What a task commits per input partition: (next offset to read, offset metadata).
Offsets = dict[TopicPartition, tuple[int, str]]


class StreamTask(TaskCore[RecordCollector]):
    """Processes one partition of one sub-topology from the worker's fetches; see the module docstring."""

    def __init__(
        self,
        subtopology: SubTopology,
        partition: int,
        config: StreamerConfig,
        producer: AIOKafkaProducer,
        partition_counts: dict[str, int],
        stores: TaskStores,
        metrics: WorkerMetrics | None = None,
        outputs: OutputTopics | None = None,
    ) -> None:
        self.producer = producer
        production = None if outputs is None else ProductionErrorHandler(  # records the broker would refuse
            task_id_of(subtopology.id, partition), config, outputs, producer._max_request_size, metrics)
        super().__init__(subtopology, partition, config, RecordCollector(producer, partition_counts, metrics,
                                                                         production), stores)
        self.metrics = metrics
        self.lock = asyncio.Lock()
        #: next offset to read per input partition: committed at open, then as processed
        self.consumed: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._queue: collections.deque[tuple[TopicPartition, list[Any]]] = collections.deque()
        self._buffered: dict[TopicPartition, int] = {}
        #: bytes of a fetched record's key and value, from the latest fetch: max_buffered_bytes in records
        self._record_bytes = 1
        #: records still on the broker per partition, as the poll loop last saw (partition groups only)
        self.lags: dict[TopicPartition, int | None] = {}
        self._has_work = asyncio.Event()
        #: set by a failed commit: the task processes no more until the worker closes and reopens it
        self.halted = False
        #: its stores are closed and its producer let go (a task closes once, whoever asks first)
        self.released = False
        #: set by ``stop_running``: the runner returns before its next pass
        self._stop_requested = False

    @property
    def partitions(self) -> list[TopicPartition]:
        return [TopicPartition(topic, self.partition) for topic in self.sources]

    def use_producer(self, producer: AIOKafkaProducer) -> None:
        """Write through ``producer`` from now on (a resumed task's new one); nothing may be pending."""
        self.producer = producer
        self.collector.use_producer(producer)

    def open_at(self, committed: dict[TopicPartition, tuple[int, str | None]]) -> None:
        """Open with the committed (offset, metadata) of the task's partitions (see ``TaskCore.open``)."""
        for tp, (offset, _) in committed.items():
            if offset >= 0:
                self.consumed[tp] = self._committed[tp] = offset
        self.open([metadata for _, metadata in committed.values()])

    def enqueue(self, tp: TopicPartition, messages: list[Any]) -> None:
        self._record_bytes = max(messages[0].serialized_key_size, 0) + max(messages[0].serialized_value_size, 0) + 1
        if self.group is not None:
            self.group.add(tp, messages)
        else:
            self._queue.append((tp, messages))
            self._buffered[tp] = self._buffered.get(tp, 0) + len(messages)
        self._has_work.set()

    @property
    def buffer_limit(self) -> int:
        """Records a partition may have waiting before its fetching pauses: the smaller of the two bounds."""
        return max(1, min(self.config.max_buffered_records, self.config.max_buffered_bytes // self._record_bytes))

    def buffered(self, tp: TopicPartition) -> int:
        """Fetched records of ``tp`` waiting to be processed (what backpressure counts, per partition)."""
        return self.group.buffered(tp) if self.group is not None else self._buffered.get(tp, 0)

    def note_lags(self, lags: dict[TopicPartition, int | None]) -> None:
        """The poll loop's view of the empty partitions' lag; a task waiting for it looks again."""
        if lags != {tp: self.lags.get(tp) for tp in lags}:
            self.lags.update(lags)
            self._has_work.set()

    def stop_running(self) -> None:
        """End the runner before its next pass; call under ``lock``, so that no pass is under way.

        Not by cancelling the runner: asyncio.wait_for before Python 3.12 (here, and inside
        aiokafka) swallows a cancel that arrives as its wait ends, and a runner that missed its
        cancel ran on for ever while the worker waited for it to end (a revocation never finished).
        """
        self._stop_requested = True
        self._has_work.set()

    def runner(self) -> Coroutine[Any, Any, None]:
        """What the worker runs as the task's runner; ``stop_running`` ends it from here on."""
        self._stop_requested = False
        return self._passes()

    async def _passes(self) -> None:
        """Process queued input until ``stop_running``; a failure propagates to the worker."""
        while True:
            async with self.lock:
                if self.halted or self._stop_requested:  # halted: its writes would go to an aborting transaction
                    return
                self._has_work.clear()  # anything enqueued from here on sets it again
                progressed = await self._process_queued()
                await self.punctuate(PunctuationType.WALL_CLOCK_TIME, self.clock())
                await self.collector.drain()
            if not progressed:
                await self._wait_for_work()

    async def _process_queued(self) -> bool:
        if self.group is not None:
            chosen = await self.process_next(self.lags.get)
            for (topic, partition), offset in self.group.next_offsets.items():
                self.consumed[TopicPartition(topic, partition)] = offset
            if chosen is not None and chosen.records and self.metrics is not None:
                self.metrics.consumed(chosen.partition[0], chosen.partition[1], len(chosen.records))
            return chosen is not None
        if not self._queue:
            return False
        tp, messages = self._take_queued()
        self._buffered[tp] -= len(messages)
        await self.process(tp.topic, tp.partition, messages)
        self.consumed[tp] = messages[-1].offset + 1
        if self.metrics is not None:
            self.metrics.consumed(tp.topic, tp.partition, len(messages))
        return True

    def _take_queued(self) -> tuple[TopicPartition, list[Any]]:
        """The partition's queued fetches as one batch of at most ``max_poll_records`` (more if the first is larger).

        Fetches arrive far more often than a pass ends (each pass waits for its output batch
        to be taken by the producer), so a pass per fetch would leave the queue growing by
        seconds at a steady rate; one pass for all of them keeps the wait within a pass.
        """
        tp, messages = self._queue.popleft()
        if not self._queue:
            return tp, messages
        parts, count, limit = [messages], len(messages), self.config.max_poll_records
        while self._queue and self._queue[0][0] == tp and count + len(self._queue[0][1]) <= limit:
            more = self._queue.popleft()[1]
            parts.append(more)
            count += len(more)
        return tp, list(itertools.chain.from_iterable(parts)) if len(parts) > 1 else messages

    async def _wait_for_work(self) -> None:
        due = [d for d in (self.punctuation.next_due(PunctuationType.WALL_CLOCK_TIME),
                           self.group.next_deadline() if self.group is not None else None) if d is not None]
        timeout = None if not due else max(0.0, (min(due) - self.clock()) / 1000)
        try:
            async with asyncio.timeout(timeout):  # unlike wait_for in 3.11, never swallows a cancel
                await self._has_work.wait()
        except TimeoutError:
            pass

    @property
    def needs_commit(self) -> bool:
        return (self.consumed != self._committed or self.stores.dirty_count > 0
                or (self.time.dirty and bool(self.consumed)))

    @property
    def wants_early_commit(self) -> bool:
        return (self.stores.dirty_count >= self.config.max_dirty_entries
                or self.stores.dirty_bytes >= self.config.max_dirty_bytes)

    async def flush(self) -> Offsets:
        """Produce state changes, wait until every output is acknowledged; call under ``lock``.

        Returns the input offsets (next offset to read) that are now safe to commit, each
        with the task's stream time and processor metadata as offset metadata.
        """
        self.stores.produce_changelogs(self.collector, self.stream_time)
        written = await self.collector.flush()
        self.stores.note_written(written)
        metadata = self.time.encode()
        return {tp: (offset, metadata) for tp, offset in self.consumed.items()}

    def committed(self, offsets: Offsets) -> None:
        """The offsets from ``flush`` are committed: state and time changes now count."""
        self.stores.apply()
        self.time.commit()
        self._committed = {tp: offset for tp, (offset, _) in offsets.items()}

    def suspend(self) -> None:
        """Drop the fetched input not processed yet: a resumed task fetches it again from its committed offsets."""
        self._queue.clear()
        self._buffered.clear()
        self.lags.clear()
        if self.group is not None:
            self.group = PartitionGroup(self.group.partitions, self.config.max_task_idle_ms, self._intake)

    def resumable(self, committed: Mapping[TopicPartition, int]) -> bool:
        """Nobody committed for the task since it was suspended here (else its local state is behind)."""
        return {tp: offset for tp, offset in committed.items() if offset >= 0} == self._committed

    def abandon(self) -> None:
        """Drop everything not committed (after a failed commit or a lost transaction)."""
        self.collector.discard()
        self.stores.discard()
        self.time.discard()
        self.consumed = dict(self._committed)

    def halt(self) -> None:
        """Drop everything not committed and process nothing more; call under ``lock``."""
        self.abandon()
        self.halted = True
