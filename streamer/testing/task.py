"""One sub-topology's task inside the test driver (partition 0 of every input).

It is the runtime's task core (same task graph, context, time, partition group,
punctuation schedule, error handler and store commit sequence) fed the driver's
batches, writing to in-memory topics, with the driver's wall clock so tests control
time. Every partition of a driver task is caught up by definition (nothing waits on a
broker), so a task with several inputs waits only for ``max_task_idle_ms``.
"""

from __future__ import annotations

from typing import Mapping

from streamer.config import StreamerConfig
from streamer.processors.api import PunctuationType
from streamer.runtime.task_core import Clock, TaskCore
from streamer.runtime.task_stores import TaskStores
from streamer.state.write_cache import WriteCache
from streamer.testing.topics import DriverCollector, Message, TopicLogs
from streamer.topology.topology import SubTopology


def _caught_up(partition: object) -> int:
    return 0


class DriverTask(TaskCore[DriverCollector]):
    """A task core fed the driver's batches, writing to the driver's in-memory topics."""

    def __init__(self, subtopology: SubTopology, config: StreamerConfig, stores: TaskStores,
                 logs: TopicLogs, clock: Clock, global_stores: Mapping[str, WriteCache] | None = None) -> None:
        super().__init__(subtopology, 0, config, DriverCollector(logs), stores, clock, global_stores)
        self.open([])  # its stores start empty: nothing to restore, no committed time

    async def process_messages(self, messages: list[Message]) -> None:
        """A batch of messages of one topic partition, then the wall-clock punctuators that are due."""
        first = messages[0]
        if self.group is None:
            await self.process(first.topic, first.partition, messages)
        else:
            self.group.add((first.topic, first.partition), messages)
            await self.process_ready()
        await self.punctuate(PunctuationType.WALL_CLOCK_TIME, self.clock())

    async def process_ready(self) -> None:
        """Process queued input in timestamp order for as long as the task need not wait."""
        if self.group is not None:
            while await self.process_next(_caught_up) is not None:
                pass

    def commit(self) -> None:
        """The runtime's commit: changelogs produced, their offsets noted, caches applied, time committed."""
        self.stores.produce_changelogs(self.collector, self.stream_time)
        self.stores.note_written(self.collector.take_written())
        self.stores.apply()
        self.time.commit()

    def abandon(self) -> None:
        """Drop uncommitted state, time and metadata changes, as a task does after a failed batch."""
        self.collector.take_written()
        self.stores.discard()
        self.time.discard()
