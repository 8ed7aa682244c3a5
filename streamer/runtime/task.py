"""A task in a worker: one sub-topology working on one partition of its input topics.

On top of the task core it owns a queue of fetched batches, the input offsets it
consumed and its output batches. It processes the queue in offset order, one batch at
a time under ``lock``, so the worker can commit between batches without ever seeing
half a batch.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from streamer.config import StreamerConfig
from streamer.processors.api import PunctuationType
from streamer.runtime.collector import RecordCollector
from streamer.runtime.task_core import TaskCore
from streamer.runtime.task_stores import TaskStores
from streamer.topology.topology import SubTopology


class StreamTask(TaskCore):
    """Processes one partition of one sub-topology from the worker's fetches; see the module docstring."""

    def __init__(
        self,
        subtopology: SubTopology,
        partition: int,
        config: StreamerConfig,
        producer: AIOKafkaProducer,
        partition_counts: dict[str, int],
        stores: TaskStores,
    ) -> None:
        self.producer = producer
        super().__init__(subtopology, partition, config, RecordCollector(producer, partition_counts), stores)
        self.lock = asyncio.Lock()
        self.buffered = 0
        self.consumed: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._queue: collections.deque[tuple[TopicPartition, list[Any]]] = collections.deque()
        self._has_work = asyncio.Event()

    @property
    def partitions(self) -> list[TopicPartition]:
        return [TopicPartition(topic, self.partition) for topic in self.sources]

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
                    await self.process(tp.topic, tp.partition, messages)
                    self.consumed[tp] = messages[-1].offset + 1
                await self.punctuate(PunctuationType.WALL_CLOCK_TIME, self.clock())
                await self.collector.drain()

    async def _wait_for_work(self) -> None:
        due = self.punctuation.next_due(PunctuationType.WALL_CLOCK_TIME)
        timeout = None if due is None else max(0.0, (due - self.clock()) / 1000)
        try:
            await asyncio.wait_for(self._has_work.wait(), timeout)
        except TimeoutError:
            pass

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

