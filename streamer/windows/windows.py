"""Window specifications: which windows a record falls into, how long they accept late records.

Names and semantics follow Kafka Streams (``TimeWindows``, ``SlidingWindows``,
``SessionWindows``, ``EmitStrategy``) in snake_case. Durations are milliseconds (an int)
or a ``datetime.timedelta``. A window closes once the aggregation's stream time passes
its end plus the grace period; records for a closed window are late and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from streamer.errors import TopologyError

Duration = int | timedelta


def millis(value: Duration, what: str, *, minimum: int = 0) -> int:
    """``value`` in whole milliseconds, checked against ``minimum``; the error names the argument."""
    if isinstance(value, timedelta):
        ms = value // timedelta(milliseconds=1)
        if timedelta(milliseconds=ms) != value:
            raise TopologyError(f"{what} must be whole milliseconds, got {value!r}")
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
    else:
        raise TopologyError(f"{what} must be milliseconds (int) or a timedelta, got {value!r}")
    if ms < minimum:
        bound = "positive" if minimum == 1 else f"at least {minimum} ms"
        raise TopologyError(f"{what} must be {bound}, got {ms} ms")
    return ms


@dataclass(frozen=True)
class TimeWindows:
    """Fixed-size windows ``[start, start + size)``: tumbling, or hopping with ``advance_by``.

    Window starts are multiples of ``advance_ms`` from the epoch and never negative, so a
    record at time t falls into every window whose start is in ``(t - size, t]``.
    """

    size_ms: int
    advance_ms: int
    grace_ms: int

    @staticmethod
    def of_size_and_grace(size_ms: Duration, grace_ms: Duration) -> TimeWindows:
        """Tumbling windows of ``size_ms`` that accept records up to ``grace_ms`` after their end."""
        size = millis(size_ms, "TimeWindows size_ms", minimum=1)
        return TimeWindows(size, size, millis(grace_ms, "TimeWindows grace_ms"))

    @staticmethod
    def of_size_with_no_grace(size_ms: Duration) -> TimeWindows:
        """Tumbling windows that close as soon as stream time reaches their end."""
        return TimeWindows.of_size_and_grace(size_ms, 0)

    def advance_by(self, advance_ms: Duration) -> TimeWindows:
        """Hopping windows: a new window every ``advance_ms`` (at most the size)."""
        advance = millis(advance_ms, "TimeWindows advance_ms", minimum=1)
        if advance > self.size_ms:
            raise TopologyError(
                f"TimeWindows advance_ms ({advance}) must not exceed the window size ({self.size_ms} ms); "
                "windows would leave gaps. Use a smaller advance or a larger size"
            )
        return TimeWindows(self.size_ms, advance, self.grace_ms)

    def window_starts(self, timestamp: int) -> range:
        """Starts of the windows containing ``timestamp``, oldest first."""
        first = (max(0, timestamp - self.size_ms + self.advance_ms) // self.advance_ms) * self.advance_ms
        return range(first, timestamp + 1, self.advance_ms)

    @property
    def default_retention_ms(self) -> int:
        """How long the store must keep a window: until it can no longer change."""
        return self.size_ms + self.grace_ms

    @property
    def window_size_ms(self) -> int:
        return self.size_ms


@dataclass(frozen=True)
class SlidingWindows:
    """Windows of ``time_difference_ms`` that slide with the records: ``[start, start + difference]``.

    Both ends are inclusive, as in Kafka Streams. Each record makes the window that ends
    at it and, if a later record is near, the one that starts right after it, so every
    distinct set of records within ``time_difference_ms`` of each other has one window.
    """

    time_difference_ms: int
    grace_ms: int

    @staticmethod
    def of_time_difference_and_grace(time_difference_ms: Duration, grace_ms: Duration) -> SlidingWindows:
        return SlidingWindows(millis(time_difference_ms, "SlidingWindows time_difference_ms", minimum=1),
                              millis(grace_ms, "SlidingWindows grace_ms"))

    @staticmethod
    def of_time_difference_with_no_grace(time_difference_ms: Duration) -> SlidingWindows:
        return SlidingWindows.of_time_difference_and_grace(time_difference_ms, 0)

    @property
    def default_retention_ms(self) -> int:
        """A record's windows reach back twice the difference (the window before it, and its own)."""
        return 2 * self.time_difference_ms + self.grace_ms

    @property
    def window_size_ms(self) -> int:
        return self.time_difference_ms


@dataclass(frozen=True)
class SessionWindows:
    """Per-key sessions: records less than ``gap_ms`` apart share a session ``[first, last]``.

    A session closes once stream time passes its end plus the gap plus the grace period.
    """

    gap_ms: int
    grace_ms: int

    @staticmethod
    def of_inactivity_gap_and_grace(gap_ms: Duration, grace_ms: Duration) -> SessionWindows:
        return SessionWindows(millis(gap_ms, "SessionWindows gap_ms", minimum=1),
                              millis(grace_ms, "SessionWindows grace_ms"))

    @staticmethod
    def of_inactivity_gap_with_no_grace(gap_ms: Duration) -> SessionWindows:
        return SessionWindows.of_inactivity_gap_and_grace(gap_ms, 0)

    @property
    def default_retention_ms(self) -> int:
        return self.gap_ms + self.grace_ms


#: Any window specification ``windowed_by`` accepts.
Windows = TimeWindows | SlidingWindows | SessionWindows


@dataclass(frozen=True)
class EmitStrategy:
    """When a windowed aggregation forwards results: on every update, or once per window at its close."""

    kind: Literal["on_window_update", "on_window_close"]

    @staticmethod
    def on_window_update() -> EmitStrategy:
        """Every record's change to a window goes downstream at once (the default)."""
        return EmitStrategy("on_window_update")

    @staticmethod
    def on_window_close() -> EmitStrategy:
        """One final result per window and key, when stream time passes the window's end plus grace."""
        return EmitStrategy("on_window_close")

    @property
    def on_close(self) -> bool:
        return self.kind == "on_window_close"


def check_retention(windows: Windows, retention_ms: Duration | None) -> int:
    """The store retention to use: the default, or a larger one the user asked for."""
    default = windows.default_retention_ms
    if retention_ms is None:
        return default
    retention = millis(retention_ms, "retention_ms")
    if retention < default:
        raise TopologyError(
            f"retention_ms ({retention}) must be at least {default} ms for {windows}: a window must stay in "
            "the store until it closes. Raise retention_ms or leave it out"
        )
    return retention
