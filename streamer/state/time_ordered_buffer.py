"""Entries ordered by time, evicted oldest first: what suppression and emit-on-close hold back.

Logical key: ``time (8 bytes big-endian signed) + key bytes``, so the oldest entries are
the first of a scan and eviction up to a time is one range. Over a plain (unsegmented)
store with a compacted changelog: evicted entries are deleted, not expired.

A queue in a LSM store leaves the deletes of evicted entries at its head, so every scan
starts at a floor below which nothing live remains, and the lowest time is remembered,
so an eviction with nothing due (most records) scans nothing. Both are uncommitted
bookkeeping: a discard of the write cache resets them.
"""

from __future__ import annotations

from streamer.errors import StateStoreError
from streamer.state.segmented import MAX_TIME, time_bytes
from streamer.state.write_cache import WriteCache

_TIME_SIZE = 8


class TimeOrderedBuffer:
    """(time, key) -> value over a write cache; times are epoch milliseconds >= 0."""

    def __init__(self, cache: WriteCache) -> None:
        self.name = cache.name
        self._cache = cache
        self._discards = cache.discards
        self._floor: bytes | None = None
        self._min_known = False
        self._min: int | None = None

    def _sync(self) -> None:
        """Forget the bookkeeping if the write cache discarded writes it was based on."""
        discards = self._cache.discards
        if discards != self._discards:
            self._discards = discards
            self._floor = None
            self._min_known = False

    def put(self, time: int, key: bytes, value: bytes) -> None:
        if time < 0:
            raise StateStoreError(f"buffer {self.name}: time {time} is negative; times are epoch milliseconds >= 0")
        self._sync()
        logical = time_bytes(time) + key
        self._cache.put(logical, value)
        if self._floor is not None and logical < self._floor:
            self._floor = logical
        if self._min_known and (self._min is None or time < self._min):
            self._min = time

    def put_many(self, entries: list[tuple[int, bytes, bytes]]) -> None:
        """``put`` of each ``(time, key, value)``, the bookkeeping updated once for them all."""
        if not entries:
            return
        low_time = min(time for time, _, _ in entries)
        if low_time < 0:
            raise StateStoreError(f"buffer {self.name}: time {low_time} is negative; "
                                  "times are epoch milliseconds >= 0")
        self._sync()
        put = self._cache.put
        logicals = [time_bytes(time) + key for time, key, _ in entries]
        for logical, (_, _, value) in zip(logicals, entries):
            put(logical, value)
        if self._floor is not None:
            self._floor = min(self._floor, min(logicals))
        if self._min_known and (self._min is None or low_time < self._min):
            self._min = low_time

    def delete(self, time: int, key: bytes) -> None:
        self._sync()
        self._cache.delete(time_bytes(time) + key)
        if self._min_known and time == self._min:
            self._min_known = False

    def min_time(self) -> int | None:
        """The lowest time held, or None if the buffer is empty."""
        self._sync()
        if not self._min_known:
            first = next(self._cache.range(self._floor, None), None)
            self._min = None if first is None else int.from_bytes(first[0][:_TIME_SIZE], "big", signed=True)
            self._min_known = True
        return self._min

    def evict(self, up_to_time_inclusive: int) -> list[tuple[int, bytes, bytes]]:
        """Remove and return ``(time, key, value)`` of every entry with time <= the given one, oldest first."""
        low = self.min_time()
        if low is None or low > up_to_time_inclusive:
            return []
        end = time_bytes(up_to_time_inclusive + 1) if up_to_time_inclusive < MAX_TIME else None
        items = list(self._cache.range(self._floor, end))
        self._cache.delete_many([logical for logical, _ in items])
        self._floor = end
        self._min_known = False
        return [(int.from_bytes(logical[:_TIME_SIZE], "big", signed=True), logical[_TIME_SIZE:], value)
                for logical, value in items]
