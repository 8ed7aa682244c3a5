"""Schedules of punctuators by stream time, wall-clock time, or a cron expression.

Shared by the runtime and the test driver: both tell it the time and run what is due.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Iterator

from croniter import croniter

from streamer.errors import TopologyError
from streamer.processors.api import PunctuationType, Punctuator


@dataclass(order=True)
class _Entry:
    due: int
    seq: int
    kind: PunctuationType = field(compare=False)
    node: str = field(compare=False)
    punctuator: Punctuator = field(compare=False)
    interval_ms: int = field(compare=False)
    cron: croniter | None = field(compare=False, default=None)
    cancelled: bool = field(compare=False, default=False)


class Cancellable:
    """What ``schedule`` returns: ``cancel()`` stops the punctuator (it is not called again)."""

    __slots__ = ("_entry",)

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    def cancel(self) -> None:
        self._entry.cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._entry.cancelled


class PunctuationSchedule:
    """Punctuators of one task, ordered by when they are next due."""

    def __init__(self) -> None:
        self._queues: dict[PunctuationType, list[_Entry]] = {kind: [] for kind in PunctuationType}
        self._seq = itertools.count()

    def add(self, node: str, interval_ms: int, kind: PunctuationType, punctuator: Punctuator, now: int) -> Cancellable:
        if interval_ms < 1:
            raise TopologyError(f"punctuation interval must be at least 1 ms, got {interval_ms}")
        first = (now + interval_ms) if now >= 0 else interval_ms
        entry = _Entry(first, next(self._seq), kind, node, punctuator, interval_ms)
        heapq.heappush(self._queues[kind], entry)
        return Cancellable(entry)

    def add_cron(self, node: str, expression: str, punctuator: Punctuator, now_ms: int) -> Cancellable:
        if not croniter.is_valid(expression):
            raise TopologyError(f"{expression!r} is not a valid cron expression (five fields: m h dom mon dow)")
        schedule = croniter(expression, datetime.fromtimestamp(now_ms / 1000, tz=UTC))
        due = int(schedule.get_next(float) * 1000)
        entry = _Entry(due, next(self._seq), PunctuationType.WALL_CLOCK_TIME, node, punctuator, 0, schedule)
        heapq.heappush(self._queues[PunctuationType.WALL_CLOCK_TIME], entry)
        return Cancellable(entry)

    def due(self, kind: PunctuationType, now: int) -> Iterator[tuple[str, Punctuator, int]]:
        """Pop what is due at ``now`` and reschedule it; yields (node, punctuator, time) to run.

        One at a time, so a punctuator cancelled by an earlier one in the same round is
        not called. A punctuator that fell behind runs once, then is due again one
        interval after ``now``: Kafka Streams' behaviour, so a long pause does not cause a burst.
        """
        queue = self._queues[kind]
        while queue and queue[0].due <= now:
            entry = heapq.heappop(queue)
            if entry.cancelled:
                continue
            if entry.cron is not None:
                while entry.due <= now:
                    entry.due = int(entry.cron.get_next(float) * 1000)
            else:
                entry.due = now + entry.interval_ms
            entry.seq = next(self._seq)
            heapq.heappush(queue, entry)
            yield entry.node, entry.punctuator, now

    def next_due(self, kind: PunctuationType) -> int | None:
        queue = self._queues[kind]
        while queue and queue[0].cancelled:
            heapq.heappop(queue)
        return queue[0].due if queue else None
