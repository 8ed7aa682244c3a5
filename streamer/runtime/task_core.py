"""What every task does, wherever its records come from: the worker's Kafka fetches or the test driver.

A task core owns the sub-topology's processors for one partition, its stream time and
punctuation schedule, and sends records that fail to the error handler with the raw
input message they came from.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Protocol

from streamer.config import StreamerConfig
from streamer.processors.api import PunctuationType
from streamer.processors.graph import TaskGraph
from streamer.processors.punctuation import PunctuationSchedule
from streamer.record import Record
from streamer.runtime.context import TaskContext
from streamer.runtime.error_handler import ErrorHandler
from streamer.runtime.task_stores import TaskStores
from streamer.topology.topology import SubTopology

#: Milliseconds since the epoch; the driver substitutes a clock the test controls.
Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def task_id_of(subtopology: int, partition: int) -> str:
    """Kafka Streams' task naming: ``<sub-topology>_<partition>``."""
    return f"{subtopology}_{partition}"


class Collector(Protocol):
    """Where a task's output goes: the runtime's RecordCollector or the driver's in-memory topics."""

    def send(self, topic: str, keys: list[Any], values: list[Any], timestamps: list[int], headers: list[Any],
             partitions: list[int] | None = None) -> None: ...

    def partition_count(self, topic: str) -> int: ...


class TaskCore:
    """Processors, stream time, punctuation and error handling of one sub-topology partition."""

    def __init__(
        self,
        subtopology: SubTopology,
        partition: int,
        config: StreamerConfig,
        collector: Collector,
        stores: TaskStores,
        clock: Clock = wall_clock_ms,
    ) -> None:
        self.subtopology = subtopology
        self.partition = partition
        self.config = config
        self.application_id = config.application_id
        self.task_id = task_id_of(subtopology.id, partition)
        self.collector = collector
        self.stores = stores
        self.clock = clock
        self.punctuation = PunctuationSchedule()
        self.stream_time = -1
        self._current: tuple[str, int, list[Any]] | None = None
        self._raw_by_offset: dict[int, Any] | None = None
        self.errors = ErrorHandler(
            self.task_id,
            config.deserialization_error_handler,
            config.processing_error_handler,
            config.effective_dead_letter_topic,
            collector.send,
        )
        nodes = subtopology.nodes
        position = {node.name: i for i, node in enumerate(nodes)}
        self.graph = TaskGraph(
            [node.factory() for node in nodes],
            [[position[child] for child in node.children] for node in nodes],
        )
        #: topic -> position of the source node reading it
        self.sources = {
            topic: position[source.node]
            for source in subtopology.sources
            for topic in source.resolved_topics(self.application_id)
        }
        self._patterns = [(re.compile(s.pattern), position[s.node]) for s in subtopology.sources if s.pattern]
        self.graph.init(TaskContext(self))

    @property
    def source_patterns(self) -> list[str]:
        return [pattern.pattern for pattern, _ in self._patterns]

    def source_of(self, topic: str) -> int | None:
        """Position of the source node reading ``topic`` (by name or pattern), None if none does."""
        if topic in self.sources:
            return self.sources[topic]
        return next((index for pattern, index in self._patterns if pattern.fullmatch(topic)), None)

    async def process(self, topic: str, partition: int, messages: list[Any]) -> None:
        """Run fetched messages (key, value, timestamp, headers, offset) through the graph."""
        self._current = (topic, partition, messages)
        self._raw_by_offset = None
        try:
            await self.graph.run(self.source_of(topic), messages)
        finally:
            self._current = None
        newest = max(m.timestamp for m in messages)
        if newest > self.stream_time:
            self.stream_time = newest
            await self.punctuate(PunctuationType.STREAM_TIME, newest)

    async def punctuate(self, kind: PunctuationType, now: int) -> None:
        for node, punctuator, at in self.punctuation.due(kind, now):
            records = punctuator(at)
            if records:
                await self.graph.forward_from(node, list(records))

    def record_error(self, processor: str, record: Record, error: BaseException) -> None:
        topic, partition, _ = self._current or ("", self.partition, [])
        self.errors.handle(processor, record, error, (topic, partition), self._raw_message)

    def _raw_message(self, offset: int) -> Any:
        if self._raw_by_offset is None:
            messages = self._current[2] if self._current else []
            self._raw_by_offset = {m.offset: m for m in messages}
        return self._raw_by_offset.get(offset)

    def close(self) -> None:
        self.graph.close()
        self.stores.close()
