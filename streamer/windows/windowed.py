"""The key of a windowed aggregate: the record key and the window it counts in."""

from __future__ import annotations

from typing import Any


class Windowed:
    """``key`` within the window ``[start, end)`` (time windows) or ``[start, end]`` (sessions).

    Time windows are half-open, as in Kafka Streams; a session window holds records
    from ``start`` to ``end`` inclusive, and a session of one record has start == end.
    """

    __slots__ = ("key", "start", "end")

    def __init__(self, key: Any, start: int, end: int) -> None:
        self.key = key
        self.start = start
        self.end = end

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Windowed):
            return NotImplemented
        return (self.key, self.start, self.end) == (other.key, other.start, other.end)

    def __hash__(self) -> int:
        return hash((self.key, self.start, self.end))

    def __repr__(self) -> str:
        return f"Windowed(key={self.key!r}, start={self.start}, end={self.end})"
