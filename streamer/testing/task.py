"""One sub-topology's task inside the test driver (partition 0 of every input).

It is the runtime's task core (same task graph, context, punctuation schedule, error
handler and store commit sequence) fed one message at a time by the driver, writing to
in-memory topics, with the driver's wall clock so tests control time.
"""

from __future__ import annotations

from streamer.config import StreamerConfig
from streamer.processors.api import PunctuationType
from streamer.runtime.task_core import Clock, TaskCore
from streamer.runtime.task_stores import TaskStores
from streamer.testing.topics import DriverCollector, Message, TopicLogs
from streamer.topology.topology import SubTopology


class DriverTask(TaskCore):
    """A task core fed one message at a time, writing to the driver's in-memory topics."""

    def __init__(self, subtopology: SubTopology, config: StreamerConfig, stores: TaskStores,
                 logs: TopicLogs, clock: Clock) -> None:
        super().__init__(subtopology, 0, config, DriverCollector(logs), stores, clock)

    async def process_message(self, message: Message) -> None:
        """A batch of one message, then the wall-clock punctuators that are due."""
        await self.process(message.topic, message.partition, [message])
        await self.punctuate(PunctuationType.WALL_CLOCK_TIME, self.clock())

    def commit(self) -> None:
        """The runtime's commit: changelogs produced, their offsets noted, caches applied to stores."""
        self.stores.produce_changelogs(self.collector, self.stream_time)
        self.stores.note_written(self.collector.take_written())
        self.stores.apply()

    def abandon(self) -> None:
        """Drop uncommitted state changes, as a task does after a failed batch."""
        self.collector.take_written()
        self.stores.discard()

