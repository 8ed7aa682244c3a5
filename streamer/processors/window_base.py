"""What windowed aggregations and suppression share: their own stream time, idle close, final results.

Each windowed processor keeps the highest timestamp of the records it has seen (Kafka
Streams' "observed stream time"), which decides when a window closes. It is saved as
processor metadata, committed with the task's offsets, so a restarted task never
accepts a record into a window it had already closed.

Closing on idle (``idle_ms``, opt-in): a wall-clock punctuator watches for input; once
none arrived for ``idle_ms``, stream time moves on with the wall clock (by the time
passed since the last input), so windows close and final results come out without new
records. A record that arrives later for such a window is late.
"""

from __future__ import annotations

from typing import Any, Callable

from streamer.processors.api import ProcessorContext, PunctuationType
from streamer.processors.keyed import KeyedProcessor
from streamer.record import Record
from streamer.serde import Serde
from streamer.state.time_ordered_buffer import TimeOrderedBuffer
from streamer.state.write_cache import WriteCache

#: Stream time before the first record.
NO_TIME = -1
#: Idle checks run at this fraction of the idle time (at most once a second), which bounds
#: how late after ``idle_ms`` the idle close starts.
_IDLE_CHECKS_PER_PERIOD = 10
_MAX_IDLE_CHECK_MS = 1000


class WindowedProcessor(KeyedProcessor):
    """A processor with its own stream time, saved under ``time_key`` in the task's processor metadata."""

    def __init__(self, name: str, time_key: str, key_serde: Serde, idle_ms: int | None) -> None:
        super().__init__(name, key_serde)
        self.time_key = time_key
        self.idle_ms = idle_ms
        self.observed_time = NO_TIME
        self._saved_time = NO_TIME
        self._last_input_wall = 0
        self._advanced_wall = 0

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        saved = context.processor_metadata(self.time_key)
        self.observed_time = self._saved_time = NO_TIME if saved is None else saved
        if self.idle_ms is not None:
            self._last_input_wall = self._advanced_wall = context.wall_clock_ms
            interval = max(1, min(self.idle_ms // _IDLE_CHECKS_PER_PERIOD, _MAX_IDLE_CHECK_MS))
            context.schedule(interval, PunctuationType.WALL_CLOCK_TIME, self._idle_check)

    def input_arrived(self) -> None:
        """Called once per batch: input resets the idle clock."""
        if self.idle_ms is not None:
            self._last_input_wall = self._advanced_wall = self.context.wall_clock_ms

    def save_time(self) -> None:
        if self.observed_time != self._saved_time:
            self.context.set_processor_metadata(self.time_key, self.observed_time)
            self._saved_time = self.observed_time

    def _idle_check(self, timestamp: int) -> list[Record]:
        idle_ms = self.idle_ms
        if idle_ms is None or self.observed_time == NO_TIME or timestamp - self._last_input_wall < idle_ms:
            return []
        self.observed_time += timestamp - self._advanced_wall
        self._advanced_wall = timestamp
        out = self.emit_closed(None)
        self.save_time()
        return out

    def emit_closed(self, trigger: Record | None) -> list[Record]:
        """Final results of the windows closed at the current stream time; ``trigger`` is the record
        that advanced it (its headers go with them), None for an idle close."""
        return []


Initializer = Callable[[], Any]
Aggregator = Callable[[Any, Any, Any], Any]


class WindowedAggregation(WindowedProcessor):
    """What time, sliding and session aggregations share: their store, functions, and the
    buffer of windows waiting to close (emit on close; None emits every update)."""

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde, retention_ms: int,
                 initializer: Initializer, aggregator: Aggregator, buffer_name: str | None,
                 idle_ms: int | None) -> None:
        super().__init__(name, store_name, key_serde, idle_ms)
        self.store_name = store_name
        self.value_serde = value_serde
        self.retention_ms = retention_ms
        self.initializer = initializer
        self.aggregator = aggregator
        self.buffer_name = buffer_name
        self.finals: TimeOrderedBuffer | None = None

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.open_store(context.get_store(self.store_name))
        if self.buffer_name is not None:
            self.finals = TimeOrderedBuffer(context.get_store(self.buffer_name))

    def open_store(self, cache: WriteCache) -> None:
        """Wrap the task's cache of the aggregation's store in the store type of its windows."""
        raise NotImplementedError


def trigger_context(trigger: Record | None) -> tuple[Any, int]:
    """Headers and offset for a final result: the triggering record's, or none for an idle close."""
    return (None, -1) if trigger is None else (trigger.headers, trigger.offset)
