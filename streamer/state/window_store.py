"""A window store: (key, window start) -> value, bytes in and bytes out, over a task's write cache.

Logical key (what the write cache and the changelog hold), as Kafka Streams' window key
schema: ``key bytes + window start (8 bytes big-endian signed)``, followed by a 4-byte
sequence number when the store retains duplicates (stream-stream joins keep every
record of a key and time). One key's windows are therefore one range scan.

Retention follows Kafka Streams: the observed time is the highest window start put;
a window whose start is ``<= observed time - retention`` is expired. Reads never return
an expired window, a put of one is ignored, and the segmented layout underneath drops
expired segments at commit (see ``streamer.state.segmented``).
"""

from __future__ import annotations

from collections.abc import Iterator

from streamer.errors import StateStoreError
from streamer.state.segmented import MAX_TIME, SegmentedStore, time_bytes
from streamer.state.store import KeyValueStore, prefix_end
from streamer.state.write_cache import WriteCache

_TIME_SIZE = 8
_SEQUENCE_SIZE = 4
_SEQUENCE_MASK = 0x7FFFFFFF


def window_segments(inner: KeyValueStore, retention_ms: int, retain_duplicates: bool = False) -> SegmentedStore:
    """The segmented layout a window store needs under its write cache."""
    return SegmentedStore(inner, retention_ms, _suffix_size(retain_duplicates))


def _suffix_size(retain_duplicates: bool) -> int:
    return _TIME_SIZE + _SEQUENCE_SIZE if retain_duplicates else _TIME_SIZE


class WindowStore:
    """Windows of byte keys with byte values; times are epoch milliseconds, never negative."""

    def __init__(self, cache: WriteCache, retention_ms: int, retain_duplicates: bool = False) -> None:
        segments = cache.store
        suffix = _suffix_size(retain_duplicates)
        if not isinstance(segments, SegmentedStore) or segments.time_offset != suffix:
            raise StateStoreError(
                f"store {cache.name} is not laid out as a window store"
                f"{' that retains duplicates' if retain_duplicates else ''}: declare it with kind='window'"
                f" and retain_duplicates={retain_duplicates} in its StoreSpec"
            )
        if segments.retention_ms != retention_ms:
            raise StateStoreError(f"window store {cache.name} was opened with retention_ms={segments.retention_ms}, "
                                  f"not {retention_ms}: give the StoreSpec the retention the processor uses")
        self.name = cache.name
        self.retention_ms = retention_ms
        self.retain_duplicates = retain_duplicates
        self._cache = cache
        self._segments = segments
        self._suffix = suffix
        self._sequence = 0

    @property
    def observed_time(self) -> int:
        """The highest window start put so far, uncommitted puts included; -1 before any."""
        return self._segments.current_time(self._cache.discards)

    def put(self, key: bytes, start: int, value: bytes | None) -> None:
        """Set the window of ``key`` starting at ``start``; None deletes it.

        With duplicates retained every put adds an entry and None does nothing, as in
        Kafka Streams. A put of an expired window is ignored.
        """
        if start < 0:
            raise StateStoreError(f"window store {self.name}: window start {start} is negative; "
                                  "window times are epoch milliseconds >= 0")
        if value is None and self.retain_duplicates:
            return
        observed = self._segments.observe(start, self._cache.discards)
        if start <= observed - self.retention_ms:
            return
        logical = key + time_bytes(start)
        if self.retain_duplicates:
            self._sequence = (self._sequence + 1) & _SEQUENCE_MASK
            logical += self._sequence.to_bytes(_SEQUENCE_SIZE, "big")
        if value is None:
            self._cache.delete(logical)
        else:
            self._cache.put(logical, value)

    def put_many(self, windows: list[tuple[bytes, int, bytes | None]]) -> None:
        """``put`` of each ``(key, start, value)`` in order, with the observed time noted once.

        What a windowed aggregation writes at a batch's end: each window expires against
        the highest start put before it (or by it), as with one ``put`` after another.
        """
        if self.retain_duplicates:
            for key, start, value in windows:
                self.put(key, start, value)
            return
        cache, retention = self._cache, self.retention_ms
        first = observed = self._segments.current_time(cache.discards)
        try:
            for key, start, value in windows:
                if start < 0:
                    raise StateStoreError(f"window store {self.name}: window start {start} is negative; "
                                          "window times are epoch milliseconds >= 0")
                if start > observed:
                    observed = start
                if start <= observed - retention:
                    continue
                if value is None:
                    cache.delete(key + time_bytes(start))
                else:
                    cache.put(key + time_bytes(start), value)
        finally:
            if observed != first:
                self._segments.observe(observed, cache.discards)

    def get_many(self, windows: list[tuple[bytes, int]]) -> list[bytes | None]:
        """``get`` of each ``(key, start)``, the live time range found once for them all.

        A window that starts after the observed time was never put, so it is not looked
        up: in a windowed aggregation that is most windows a batch opens.
        """
        if self.retain_duplicates:
            raise StateStoreError(f"window store {self.name} retains duplicates, so a window has several "
                                  "values: read them with fetch(key, start, start)")
        segments = self._segments
        observed = segments.current_time(self._cache.discards)
        live = segments.live_from(observed)
        wanted = [key + time_bytes(start) for key, start in windows if live <= start <= observed]
        if not wanted:
            return [None] * len(windows)
        found = iter(self._cache.get_many(wanted, segments.get_many))
        return [next(found) if live <= start <= observed else None for _, start in windows]

    def get(self, key: bytes, start: int) -> bytes | None:
        """The value of one window, or None (also when it expired)."""
        if self.retain_duplicates:
            raise StateStoreError(f"window store {self.name} retains duplicates, so a window has several "
                                  "values: read them with fetch(key, start, start)")
        if start < self._live_from():
            return None
        return self._cache.get(key + time_bytes(start))

    def fetch(self, key: bytes, time_from: int, time_to: int,
              backward: bool = False) -> Iterator[tuple[int, bytes]]:
        """``(start, value)`` of the live windows of ``key`` with ``time_from <= start <= time_to``, by start."""
        low = max(time_from, self._live_from())
        if time_to < low:
            return iter(())
        start = key + time_bytes(low)
        end = key + time_bytes(time_to + 1) if time_to < MAX_TIME else prefix_end(key)
        stored = self._segments.scan(start, end, backward, low, time_to)
        return self._starts(self._cache.merge_scan(stored, start, end, backward), len(key) + self._suffix)

    def _starts(self, items: Iterator[tuple[bytes, bytes]], size: int) -> Iterator[tuple[int, bytes]]:
        """Entries of the fetched key only (a longer key may share the scanned range), with their starts."""
        at = size - self._suffix
        for logical, value in items:
            if len(logical) == size:
                yield int.from_bytes(logical[at:at + _TIME_SIZE], "big", signed=True), value

    def fetch_all(self, time_from: int, time_to: int,
                  backward: bool = False) -> Iterator[tuple[bytes, int, bytes]]:
        """``(key, start, value)`` of every live window with ``time_from <= start <= time_to``, by key then start."""
        low = max(time_from, self._live_from())
        if time_to < low:
            return iter(())
        stored = self._segments.scan(None, None, backward, low, time_to)
        return self._windows(self._cache.merge_scan(stored, None, None, backward), low, time_to)

    def _windows(self, items: Iterator[tuple[bytes, bytes]], low: int,
                 high: int) -> Iterator[tuple[bytes, int, bytes]]:
        suffix = self._suffix
        for logical, value in items:
            at = len(logical) - suffix
            start = int.from_bytes(logical[at:at + _TIME_SIZE], "big", signed=True)
            if low <= start <= high:
                yield logical[:at], start, value

    def all(self) -> Iterator[tuple[bytes, int, bytes]]:
        """Every live window, by key then start."""
        return self.fetch_all(0, MAX_TIME)

    def _live_from(self) -> int:
        segments = self._segments
        return segments.live_from(segments.current_time(self._cache.discards))
