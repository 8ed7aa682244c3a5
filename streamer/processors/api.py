"""The processor API: what every processor implements and what it may ask of its task.

Processors work on whole batches. ``process`` receives every record that reached the
node in one pass over an input batch and returns the records it forwards; this keeps
the per-record cost to a loop iteration instead of a call through the graph per record.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import Any, Protocol, Sequence

from streamer.errors import TopologyError
from streamer.record import Record


class PunctuationType(enum.Enum):
    """What drives a punctuator: the task's stream time or the wall clock."""

    STREAM_TIME = "stream_time"
    WALL_CLOCK_TIME = "wall_clock_time"


class Punctuator(Protocol):
    """Called with the current time (ms) of the punctuation type; returns records to forward."""

    def __call__(self, timestamp: int, /) -> Sequence[Record] | None: ...


class Cancellable(Protocol):
    """A scheduled punctuator; ``cancel()`` stops it."""

    def cancel(self) -> None: ...


class ProcessorContext(Protocol):
    """What a processor may use from the task that runs it."""

    @property
    def application_id(self) -> str: ...

    @property
    def task_id(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def stream_time(self) -> int:
        """The task's stream time (ms): the highest event time it has taken from its input; -1 before any.

        Restored from the last commit when a task opens. While a batch is processed it
        already includes the whole batch: for a record's own moment use ``stream_time_of``.
        """
        ...

    def stream_time_of(self, record: Record) -> int:
        """Stream time as of ``record``: up to the input record it descends from, within the current batch.

        What Kafka Streams' stream time is while that record is processed (grace and late
        checks need it); ``stream_time`` for records not from the current input batch.
        """
        ...

    def processor_metadata(self, key: str) -> int | None:
        """A value committed with the task's offsets (restored when the task opens), None if never set."""
        ...

    def set_processor_metadata(self, key: str, value: int) -> None:
        """Set a value to commit with the offsets; dropped, like state, if the commit does not happen."""
        ...

    def record_dropped(self, processor: str, record: Record, reason: str) -> None:
        """Count a record the processor drops on purpose (late, say), log it at a bounded rate, and
        dead-letter its input with ``reason`` when the processing error handler is dead_letter.

        ``reason`` is its kind (``late``, ``null key``), then optionally ``: `` and the details;
        the metrics count by the kind only."""
        ...

    @property
    def wall_clock_ms(self) -> int:
        """The task's wall clock (ms since the epoch); the test driver's clock in tests."""
        ...

    def get_store(self, name: str) -> Any:
        """The task's instance of a store declared for this processor."""
        ...

    def resolve_topic(self, name: str, internal: bool) -> str:
        """Full topic name: internal topics get the application id as a prefix."""
        ...

    def schedule(self, interval_ms: int, kind: PunctuationType, punctuator: Punctuator) -> Cancellable:
        """Call ``punctuator`` every ``interval_ms`` of ``kind`` time; its records go to the children
        of the processor that scheduled it (from ``init``, ``process`` or a punctuator)."""
        ...

    def schedule_cron(self, expression: str, punctuator: Punctuator) -> Cancellable:
        """Call ``punctuator`` at each wall-clock time matching a cron expression."""
        ...

    def record_error(self, processor: str, record: Record, error: BaseException) -> None:
        """Hand a record whose processing raised to the configured error handler."""
        ...

    def send(self, topic: str, keys: list[bytes | None], values: list[bytes | None], timestamps: list[int],
             headers: list[Any], partitions: list[int] | None = None) -> None:
        """Queue serialized records, given as parallel lists, for a topic.

        ``partitions`` None means Kafka's default: murmur2 of the key bytes.
        """
        ...

    def partition_count(self, topic: str) -> int:
        """Number of partitions of a topic the task writes to."""
        ...


class Processor(ABC):
    """A node of a task graph. Instances are per task; ``init`` runs once the task's stores are
    restored and its committed time is known, before the first batch."""

    #: True for processors whose ``process`` is a coroutine function.
    is_async: bool = False
    #: True for processors that return one output list per child instead of one shared list.
    routes: bool = False

    def __init__(self, name: str) -> None:
        self.name = name
        self._context: ProcessorContext | None = None

    @property
    def context(self) -> ProcessorContext:
        """The task's context; there is none before ``init``, when the task has not opened yet."""
        if self._context is None:
            raise TopologyError(f"processor {self.name} used its context before init(); do that work in init()")
        return self._context

    def init(self, context: ProcessorContext) -> None:
        self._context = context

    @abstractmethod
    def process(self, records: list[Record]) -> Any:
        """Process a batch; return the forwarded records (or per-child lists if ``routes``)."""

    def close(self) -> None:  # noqa: B027 - an optional hook: most processors hold nothing to release
        """Release anything acquired in ``init``."""
