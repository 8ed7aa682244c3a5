"""What every task does, wherever its records come from: the worker's Kafka fetches or the test driver.

A task core owns the sub-topology's processors for one partition, its time (stream
time and processor metadata, see streamer.time) and punctuation schedule, and sends
records that fail or are dropped to the error handler with the raw input message they
came from. A task with one input partition processes each fetched batch whole; one
with several takes timestamp-ordered slices from its PartitionGroup.

Processors are initialized by ``open``, once the task's stores are restored and its
committed time is known, not when the task is built.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Generic, Mapping, Protocol, TypeVar

from streamer.config import StreamerConfig
from streamer.errors import DeserializationError, ProcessingError, TopologyError
from streamer.processors.api import PunctuationType
from streamer.processors.graph import TaskGraph
from streamer.processors.punctuation import PunctuationSchedule
from streamer.processors.source import Source
from streamer.record import Record
from streamer.runtime.context import TaskContext
from streamer.runtime.error_handler import ErrorHandler
from streamer.runtime.metrics import WorkerMetrics
from streamer.runtime.task_stores import TaskStores
from streamer.state.write_cache import WriteCache
from streamer.time.partition_group import Lag, PartitionGroup, Slice
from streamer.time.task_time import TaskTime
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


C = TypeVar("C", bound=Collector)


class TaskCore(Generic[C]):
    """Processors, stream time, punctuation and error handling of one sub-topology partition.

    Generic in its collector, whose commit-time methods each kind of task calls.
    """

    def __init__(
        self,
        subtopology: SubTopology,
        partition: int,
        config: StreamerConfig,
        collector: C,
        stores: TaskStores,
        clock: Clock = wall_clock_ms,
        global_stores: Mapping[str, WriteCache] | None = None,
    ) -> None:
        self.subtopology = subtopology
        self.partition = partition
        self.config = config
        self.application_id = config.application_id
        self.task_id = task_id_of(subtopology.id, partition)
        self.collector = collector
        self.stores = stores
        #: the worker's global tables (read-only, shared by all its tasks), by store name
        self.global_stores = dict(global_stores or {})
        self.clock = clock
        self.punctuation = PunctuationSchedule()
        self.time = TaskTime()
        #: processor name -> records it dropped (late, say), see ``record_dropped``
        self.dropped: dict[str, int] = {}
        #: the worker's metrics; None in the test driver
        self.metrics: WorkerMetrics | None = None
        self._opened = False
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
        #: position -> the source processor there, which deserializes what the task is fed
        self.source_processors = {
            index: self.graph.processor_as(index, Source)
            for index in {*self.sources.values(), *(index for _, index in self._patterns)}
        }
        self.context = TaskContext(self)
        #: timestamp-ordered input queues, only for a task with several input partitions
        self.group: PartitionGroup[tuple[str, int]] | None = None
        if len(self.sources) + len(self._patterns) > 1:
            self.group = PartitionGroup(((t, partition) for t in self.sources), config.max_task_idle_ms, self._intake)

    @property
    def stream_time(self) -> int:
        return self.time.stream_time

    def open(self, committed_metadata: list[str | None]) -> None:
        """Resume the committed stream time and processor metadata, then initialize the processors."""
        self.time.restore(committed_metadata)
        self.graph.init(self.context)
        self._opened = True

    @property
    def source_patterns(self) -> list[str]:
        return [pattern.pattern for pattern, _ in self._patterns]

    def source_of(self, topic: str) -> int | None:
        """Position of the source node reading ``topic`` (by name or pattern), None if none does."""
        if topic in self.sources:
            return self.sources[topic]
        return next((index for pattern, index in self._patterns if pattern.fullmatch(topic)), None)

    def _source_index(self, topic: str) -> int:
        index = self.source_of(topic)
        if index is None:
            raise TopologyError(f"task {self.task_id} was fed topic {topic!r}, which none of its sources reads")
        return index

    async def process(self, topic: str, partition: int, messages: list[Any]) -> None:
        """Run a fetched batch (items with key, value, timestamp, headers, offset) through the graph whole."""
        index = self._source_index(topic)
        self._current = (topic, partition, messages)
        self._raw_by_offset = None
        try:
            records, timestamps = self.source_processors[index].deserialize(messages)
            if records:
                await self._run(index, records, timestamps)
        finally:
            self._current = None

    def _intake(self, tp: tuple[str, int], messages: list[Any]) -> tuple[list[Any], list[int]]:
        """Deserialize a chunk for the partition group, with errors traced to its raw messages."""
        self._current = (tp[0], tp[1], messages)
        self._raw_by_offset = None
        try:
            return self.source_processors[self._source_index(tp[0])].deserialize(messages)
        finally:
            self._current = None

    async def process_next(self, lag: Lag) -> Slice | None:
        """Process the next timestamp-ordered slice of a task with several partitions; None: must wait."""
        assert self.group is not None
        chosen = self.group.next_slice(self.clock(), lag)
        if chosen is not None and chosen.records:
            topic, partition = chosen.partition
            self._current = (topic, partition, chosen.messages)
            self._raw_by_offset = None
            try:
                await self._run(self._source_index(topic), chosen.records, chosen.timestamps)
            finally:
                self._current = None
        return chosen

    async def _run(self, index: int, records: list[Any], timestamps: list[int]) -> None:
        advanced = self.time.begin_batch(records, timestamps)
        try:
            await self.graph.run_after(index, records)
        finally:
            self.time.end_batch()
        if advanced:
            await self.punctuate(PunctuationType.STREAM_TIME, self.time.stream_time)

    async def punctuate(self, kind: PunctuationType, now: int) -> None:
        for node, punctuator, at in self.punctuation.due(kind, now):
            began = time.perf_counter()
            records = self.graph.call_as(node, punctuator, at)
            if records:
                await self.graph.forward_from(node, list(records))
            if self.metrics is not None:  # a run with what it forwarded, as Kafka Streams' punctuate latency
                self.metrics.punctuated(self.task_id, node, kind.value, time.perf_counter() - began)

    def record_error(self, processor: str, record: Record, error: BaseException) -> None:
        topic, partition, _ = self._current or ("", self.partition, [])
        try:
            self.errors.handle(processor, record, error, (topic, partition), self._raw_message)
        except ProcessingError:
            if self.metrics is not None:  # the fail policy: the record stops the task
                self.metrics.failed(error)
            raise
        if self.metrics is not None:  # handle returned: the record was skipped, not failed
            is_serde = isinstance(error, DeserializationError)
            self.metrics.skipped(error, self.errors.policies[is_serde] == "dead_letter")

    def record_dropped(self, processor: str, record: Record, reason: str) -> None:
        self.dropped[processor] = self.dropped.get(processor, 0) + 1
        topic, partition, _ = self._current or ("", self.partition, [])
        self.errors.dropped(processor, record, reason, (topic, partition), self._raw_message)
        if self.metrics is not None:
            self.metrics.dropped(processor, reason, self.errors.policies[False] == "dead_letter")

    def _raw_message(self, offset: int) -> Any:
        if self._raw_by_offset is None:
            messages = self._current[2] if self._current else []
            self._raw_by_offset = {m.offset: m for m in messages}
        return self._raw_by_offset.get(offset)

    def close(self) -> None:
        if self._opened:
            self.graph.close()
        self.stores.close()
