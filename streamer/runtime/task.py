"""A task: one sub-topology working on one partition of its input topics.

The task owns its processors, its stores' write caches and its output batches. It
processes queued fetches in offset order, one batch at a time under ``lock``, so the
worker can commit between batches without ever seeing half a batch.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from streamer.config import StreamerConfig
from streamer.processors.api import PunctuationType
from streamer.processors.graph import TaskGraph
from streamer.processors.punctuation import PunctuationSchedule
from streamer.record import Record
from streamer.runtime.collector import RecordCollector
from streamer.runtime.context import TaskContext
from streamer.runtime.error_handler import ErrorHandler
from streamer.runtime.task_stores import TaskStores
from streamer.topology.topology import SubTopology

log = logging.getLogger("streamer.task")


def task_id_of(subtopology: int, partition: int) -> str:
    """Kafka Streams' task naming: ``<sub-topology>_<partition>``."""
    return f"{subtopology}_{partition}"


class StreamTask:
    """Processes one partition of one sub-topology; see the module docstring."""

    def __init__(
        self,
        subtopology: SubTopology,
        partition: int,
        config: StreamerConfig,
        producer: AIOKafkaProducer,
        partition_counts: dict[str, int],
        stores: TaskStores,
    ) -> None:
        self.subtopology = subtopology
        self.partition = partition
        self.application_id = config.application_id
        self.task_id = task_id_of(subtopology.id, partition)
        self.config = config
        self.stores = stores
        self.producer = producer
        self.collector = RecordCollector(producer, partition_counts)
        self.punctuation = PunctuationSchedule()
        self.stream_time = -1
        self.lock = asyncio.Lock()
        self.buffered = 0
        self.consumed: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._queue: collections.deque[tuple[TopicPartition, list[Any]]] = collections.deque()
        self._has_work = asyncio.Event()
        self._current: tuple[TopicPartition, list[Any]] | None = None
        self._raw_by_offset: dict[int, Any] | None = None
        self.errors = ErrorHandler(
            self.task_id,
            config.deserialization_error_handler,
            config.processing_error_handler,
            config.effective_dead_letter_topic,
            self.collector.send,
        )
        nodes = subtopology.nodes
        position = {node.name: i for i, node in enumerate(nodes)}
        self.graph = TaskGraph(
            [node.factory() for node in nodes],
            [[position[child] for child in node.children] for node in nodes],
        )
        self._source_index = {
            topic: position[source.node]
            for source in subtopology.sources
            for topic in source.resolved_topics(self.application_id)
        }
        self.graph.init(TaskContext(self))

    @property
    def partitions(self) -> list[TopicPartition]:
        return [TopicPartition(topic, self.partition) for topic in self._source_index]

    def enqueue(self, tp: TopicPartition, messages: list[Any]) -> None:
        self._queue.append((tp, messages))
        self.buffered += len(messages)
        self._has_work.set()

    async def run(self) -> None:
        """Process queued batches until cancelled; a failure propagates to the worker."""
        while True:
            if not self._queue:
                self._has_work.clear()
                await self._wait_for_work()
            async with self.lock:
                if self._queue:
                    tp, messages = self._queue.popleft()
                    self.buffered -= len(messages)
                    await self._process(tp, messages)
                await self._punctuate(PunctuationType.WALL_CLOCK_TIME, int(time.time() * 1000))

    async def _wait_for_work(self) -> None:
        due = self.punctuation.next_due(PunctuationType.WALL_CLOCK_TIME)
        timeout = None if due is None else max(0.0, due / 1000 - time.time())
        try:
            await asyncio.wait_for(self._has_work.wait(), timeout)
        except TimeoutError:
            pass

    async def _process(self, tp: TopicPartition, messages: list[Any]) -> None:
        self._current = (tp, messages)
        self._raw_by_offset = None
        try:
            await self.graph.run(self._source_index[tp.topic], messages)
        finally:
            self._current = None
        self.consumed[tp] = messages[-1].offset + 1
        newest = max(m.timestamp for m in messages)
        if newest > self.stream_time:
            self.stream_time = newest
            await self._punctuate(PunctuationType.STREAM_TIME, newest)
        await self.collector.drain()

    async def _punctuate(self, kind: PunctuationType, now: int) -> None:
        for node, punctuator, at in self.punctuation.due(kind, now):
            records = punctuator(at)
            if records:
                await self.graph.forward_from(node, list(records))

    def record_error(self, processor: str, record: Record, error: BaseException) -> None:
        tp, _ = self._current or (TopicPartition("", self.partition), [])
        self.errors.handle(processor, record, error, (tp.topic, tp.partition), self._raw_message)

    def _raw_message(self, offset: int) -> Any:
        if self._raw_by_offset is None:
            _, messages = self._current or (None, [])
            self._raw_by_offset = {m.offset: m for m in messages}
        return self._raw_by_offset.get(offset)

    @property
    def needs_commit(self) -> bool:
        return self.consumed != self._committed or self.stores.dirty_count > 0

    @property
    def wants_early_commit(self) -> bool:
        return self.stores.dirty_count >= self.config.max_dirty_entries

    async def flush(self) -> dict[TopicPartition, int]:
        """Produce state changes, wait until every output is acknowledged; call under ``lock``.

        Returns the input offsets (next offset to read) that are now safe to commit.
        """
        self.stores.produce_changelogs(self.collector, self.stream_time)
        written = await self.collector.flush()
        self.stores.note_written(written)
        return dict(self.consumed)

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """The offsets from ``flush`` are committed: state changes may now enter the stores."""
        self.stores.apply()
        self._committed = dict(offsets)

    def abandon(self) -> None:
        """Drop everything not committed (after a failed commit or a lost transaction)."""
        self.collector.discard()
        self.stores.discard()

    def close(self) -> None:
        self.graph.close()
        self.stores.close()
