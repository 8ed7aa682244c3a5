"""A session store: (key, session start, session end) -> value, bytes in and out, over a write cache.

Logical key, as Kafka Streams' session key schema: ``key bytes + end (8 bytes big-endian
signed) + start (8 bytes)``, so one key's sessions are one range scan ordered by end,
which is the order session merging searches them in. Sessions are segmented and
expire by their end: a session whose end is ``<= observed time - retention`` (the
observed time being the highest end put) is never returned, a put of one is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator

from streamer.errors import StateStoreError
from streamer.state.segmented import MAX_TIME, SegmentedStore, time_bytes
from streamer.state.store import KeyValueStore
from streamer.state.write_cache import WriteCache

_TIME_SIZE = 8
_SUFFIX_SIZE = 16
_ZERO = time_bytes(0)


def session_segments(inner: KeyValueStore, retention_ms: int) -> SegmentedStore:
    """The segmented layout a session store needs under its write cache (segmented by session end)."""
    return SegmentedStore(inner, retention_ms, _SUFFIX_SIZE)


class SessionStore:
    """Sessions of byte keys with byte values; start <= end, both inclusive epoch milliseconds >= 0."""

    def __init__(self, cache: WriteCache, retention_ms: int) -> None:
        segments = cache.store
        if not isinstance(segments, SegmentedStore) or segments.time_offset != _SUFFIX_SIZE:
            raise StateStoreError(f"store {cache.name} is not laid out as a session store: "
                                  "declare it with kind='session' in its StoreSpec")
        if segments.retention_ms != retention_ms:
            raise StateStoreError(f"session store {cache.name} was opened with retention_ms={segments.retention_ms}, "
                                  f"not {retention_ms}: give the StoreSpec the retention the processor uses")
        self.name = cache.name
        self.retention_ms = retention_ms
        self._cache = cache
        self._segments = segments

    @property
    def observed_time(self) -> int:
        """The highest session end put so far, uncommitted puts included; -1 before any."""
        return self._segments.current_time(self._cache.discards)

    def put(self, key: bytes, start: int, end: int, value: bytes | None) -> None:
        """Set the session ``[start, end]`` of ``key``; None removes it. A put of an expired session is ignored."""
        if not 0 <= start <= end:
            raise StateStoreError(f"session store {self.name}: session [{start}, {end}] is not a session; "
                                  "times are epoch milliseconds >= 0 and start <= end")
        observed = self._segments.observe(end, self._cache.discards)
        if end <= observed - self.retention_ms:
            return
        logical = key + time_bytes(end) + time_bytes(start)
        if value is None:
            self._cache.delete(logical)
        else:
            self._cache.put(logical, value)

    def remove(self, key: bytes, start: int, end: int) -> None:
        """Remove one session (merged into a larger one, say)."""
        self.put(key, start, end, None)

    def fetch_session(self, key: bytes, start: int, end: int) -> bytes | None:
        """The value of exactly this session, or None (also when it expired)."""
        if end < self._live_from():
            return None
        return self._cache.get(key + time_bytes(end) + time_bytes(start))

    def find_sessions(self, key: bytes, earliest_session_end: int, latest_session_start: int,
                      backward: bool = False) -> Iterator[tuple[int, int, bytes]]:
        """``(start, end, value)`` of the live sessions of ``key`` that end at or after ``earliest_session_end``
        and start at or before ``latest_session_start`` (those a record could merge with), by end then start.
        """
        segments = self._segments
        observed = segments.current_time(self._cache.discards)
        low = max(earliest_session_end, segments.live_from(observed))
        if observed < low:
            return iter(())
        start = key + time_bytes(low) + _ZERO
        end = key + time_bytes(observed + 1)  # no session ends after the observed time
        stored = segments.scan(start, end, backward, low)
        return self._sessions(self._cache.merge_scan(stored, start, end, backward), len(key), latest_session_start)

    @staticmethod
    def _sessions(items: Iterator[tuple[bytes, bytes]], key_size: int,
                  latest_start: int) -> Iterator[tuple[int, int, bytes]]:
        size = key_size + _SUFFIX_SIZE
        for logical, value in items:
            if len(logical) == size:  # a longer key may share the scanned range
                start = int.from_bytes(logical[key_size + _TIME_SIZE:], "big", signed=True)
                if start <= latest_start:
                    yield start, int.from_bytes(logical[key_size:key_size + _TIME_SIZE], "big", signed=True), value

    def fetch(self, key: bytes, backward: bool = False) -> Iterator[tuple[int, int, bytes]]:
        """Every live session of ``key``, by end then start."""
        return self.find_sessions(key, 0, MAX_TIME, backward)

    def fetch_all(self, backward: bool = False) -> Iterator[tuple[bytes, int, int, bytes]]:
        """``(key, start, end, value)`` of every live session, by key, then end, then start."""
        segments = self._segments
        low = segments.live_from(segments.current_time(self._cache.discards))
        stored = segments.scan(None, None, backward, low)
        return self._all(self._cache.merge_scan(stored, None, None, backward), low)

    @staticmethod
    def _all(items: Iterator[tuple[bytes, bytes]], low: int) -> Iterator[tuple[bytes, int, int, bytes]]:
        for logical, value in items:
            at = len(logical) - _SUFFIX_SIZE
            end = int.from_bytes(logical[at:at + _TIME_SIZE], "big", signed=True)
            if end >= low:
                yield logical[:at], int.from_bytes(logical[at + _TIME_SIZE:], "big", signed=True), end, value

    def _live_from(self) -> int:
        segments = self._segments
        return segments.live_from(segments.current_time(self._cache.discards))
