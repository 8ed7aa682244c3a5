"""One sub-topology's task inside the test driver (partition 0 of every input).

It follows ``streamer.runtime.task.StreamTask`` step for step (same task graph,
context, punctuation schedule, error handler and store commit sequence) but takes
its input one message at a time from the driver and writes to in-memory topics, and
its wall clock is the driver's, so tests control time.
"""

from __future__ import annotations

import re
from typing import Callable

from streamer.config import StreamerConfig
from streamer.processors.api import PunctuationType, Punctuator
from streamer.processors.graph import TaskGraph
from streamer.processors.punctuation import PunctuationSchedule
from streamer.record import Record
from streamer.runtime.context import TaskContext
from streamer.runtime.error_handler import ErrorHandler
from streamer.runtime.task import task_id_of
from streamer.runtime.task_stores import TaskStores
from streamer.testing.topics import DriverCollector, Message, TopicLogs
from streamer.topology.topology import SubTopology

Clock = Callable[[], int]


class DriverContext(TaskContext):
    """The runtime's task context, with wall-clock schedules on the driver's clock."""

    def schedule(self, interval_ms: int, kind: PunctuationType, punctuator: Punctuator) -> None:
        now = self.stream_time if kind is PunctuationType.STREAM_TIME else self._task.clock()
        self._task.punctuation.add(self._current_node, interval_ms, kind, punctuator, now)

    def schedule_cron(self, expression: str, punctuator: Punctuator) -> None:
        self._task.punctuation.add_cron(self._current_node, expression, punctuator, self._task.clock())


class DriverTask:
    """Processes messages of one sub-topology; has the attributes ``TaskContext`` reads."""

    def __init__(self, subtopology: SubTopology, config: StreamerConfig, stores: TaskStores,
                 logs: TopicLogs, clock: Clock) -> None:
        self.subtopology = subtopology
        self.partition = 0
        self.application_id = config.application_id
        self.task_id = task_id_of(subtopology.id, self.partition)
        self.stores = stores
        self.clock = clock
        self.collector = DriverCollector(logs)
        self.punctuation = PunctuationSchedule()
        self.stream_time = -1
        self._current: Message | None = None
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
        self.topics = {
            topic: position[source.node]
            for source in subtopology.sources
            for topic in source.resolved_topics(self.application_id)
        }
        self.patterns = [(re.compile(s.pattern), position[s.node]) for s in subtopology.sources if s.pattern]
        self.graph.init(DriverContext(self))

    def source_of(self, topic: str) -> int | None:
        """Position of the source node reading ``topic`` (by name or pattern), None if none does."""
        if topic in self.topics:
            return self.topics[topic]
        return next((index for pattern, index in self.patterns if pattern.fullmatch(topic)), None)

    async def process(self, source: int, message: Message) -> None:
        """As ``StreamTask._process`` for a batch of one message, then due wall-clock punctuators."""
        self._current = message
        try:
            await self.graph.run(source, [message])
        finally:
            self._current = None
        if message.timestamp > self.stream_time:
            self.stream_time = message.timestamp
            await self.punctuate(PunctuationType.STREAM_TIME, message.timestamp)
        await self.punctuate(PunctuationType.WALL_CLOCK_TIME, self.clock())

    async def punctuate(self, kind: PunctuationType, now: int) -> None:
        for node, punctuator, at in self.punctuation.due(kind, now):
            records = punctuator(at)
            if records:
                await self.graph.forward_from(node, list(records))

    def record_error(self, processor: str, record: Record, error: BaseException) -> None:
        current = self._current
        source = (current.topic, current.partition) if current is not None else ("", self.partition)
        self.errors.handle(processor, record, error, source, self._raw_message)

    def _raw_message(self, offset: int) -> Message | None:
        current = self._current
        return current if current is not None and current.offset == offset else None

    def commit(self) -> None:
        """The runtime's commit: changelogs produced, their offsets noted, caches applied to stores."""
        self.stores.produce_changelogs(self.collector, self.stream_time)
        self.stores.note_written(self.collector.take_written())
        self.stores.apply()

    def abandon(self) -> None:
        """Drop uncommitted state changes, as a task does after a failed batch."""
        self.collector.take_written()
        self.stores.discard()

    def close(self) -> None:
        self.graph.close()
        self.stores.close()
