"""The ProcessorContext a running task gives its processors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamer.errors import TopologyError
from streamer.processors.api import PunctuationType, Punctuator
from streamer.processors.punctuation import Cancellable
from streamer.record import Record
from streamer.topology.topology import internal_topic_name

if TYPE_CHECKING:
    from streamer.runtime.task_core import TaskCore


class TaskContext:
    """Connects processors to their task: stores, output, time, punctuation and errors."""

    def __init__(self, task: TaskCore) -> None:
        self._task = task

    @property
    def application_id(self) -> str:
        return self._task.application_id

    @property
    def task_id(self) -> str:
        return self._task.task_id

    @property
    def partition(self) -> int:
        return self._task.partition

    @property
    def stream_time(self) -> int:
        return self._task.time.stream_time

    def stream_time_of(self, record: Record) -> int:
        return self._task.time.of(record)

    def processor_metadata(self, key: str) -> int | None:
        return self._task.time.get(key)

    def set_processor_metadata(self, key: str, value: int) -> None:
        self._task.time.set(key, value)

    def record_dropped(self, processor: str, record: Record, reason: str) -> None:
        self._task.record_dropped(processor, record, reason)

    @property
    def wall_clock_ms(self) -> int:
        return self._task.clock()

    def get_store(self, name: str) -> Any:
        try:
            return self._task.stores[name]
        except KeyError:
            if name in self._task.global_stores:
                return self._task.global_stores[name]
            raise TopologyError(f"task {self.task_id} has no store {name!r}") from None

    def resolve_topic(self, name: str, internal: bool) -> str:
        return internal_topic_name(self.application_id, name) if internal else name

    def schedule(self, interval_ms: int, kind: PunctuationType, punctuator: Punctuator) -> Cancellable:
        now = self.stream_time if kind is PunctuationType.STREAM_TIME else self._task.clock()
        return self._task.punctuation.add(self._owner(), interval_ms, kind, punctuator, now)

    def schedule_cron(self, expression: str, punctuator: Punctuator) -> Cancellable:
        return self._task.punctuation.add_cron(self._owner(), expression, punctuator, self._task.clock())

    def _owner(self) -> str:
        """The processor whose code is running: its punctuators' records go to its children."""
        owner = self._task.graph.current
        if not owner:
            raise TopologyError("schedule() is only possible from a processor's init, process or punctuator")
        return owner

    def record_error(self, processor: str, record: Record, error: BaseException) -> None:
        self._task.record_error(processor, record, error)

    def send(self, topic: str, keys: list[bytes | None], values: list[bytes | None], timestamps: list[int],
             headers: list[Any], partitions: list[int] | None = None) -> None:
        self._task.collector.send(topic, keys, values, timestamps, headers, partitions)
        if self._task.metrics is not None:
            self._task.metrics.sink_sent(topic, timestamps)

    def partition_count(self, topic: str) -> int:
        return self._task.collector.partition_count(topic)
