"""Time-segmented physical layout for window and session stores: expiry drops whole segments.

Above this layer keys are *logical* (the layout the changelog carries, e.g. key bytes +
window start); the inner store holds each under ``DATA + segment id + logical key``,
where the segment id is the key's time divided by the segment interval. Expiring
old windows is then one delete-range over the segments wholly older than the
retention, instead of a delete per window.

Segments are dropped only inside ``write_batch``, which the write cache calls when a
commit applies it (and the restorer per fetch): the time that decides what expires is
the highest time of the data written so far, so an aborted transaction never deleted
anything its replay still needs. Reads hide expired data at once: the window and
session stores clamp every read to the live time range (``live_from``).

The segment interval and the observed time are kept in the inner store under a
metadata prefix that sorts before every segment, written in the same batch as the
data. A store reopened with another retention, hence another interval, is laid out
again in one batch, so no read ever computes segments with the wrong interval.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence

from streamer.errors import StateStoreError
from streamer.state.store import Entry, KeyValueStore, prefix_end

#: The first byte of every data key (metadata keys start with ``_META``, which sorts first).
_DATA = b"\x01"
_DATA_END = b"\x02"
_META = b"\x00"
_INTERVAL_KEY = _META + b"segment_interval"
_OBSERVED_KEY = _META + b"observed_time"
_PREFIX_SIZE = 9

#: The observed time before anything was written (Kafka Streams: no timestamp).
NO_TIME = -1
#: Largest time a key can carry (8 bytes, big-endian signed).
MAX_TIME = 2**63 - 1
#: Segments span at least this long, as Kafka Streams' default windowed stores.
MIN_SEGMENT_INTERVAL_MS = 60_000
#: Segment prefixes remembered at most (live segments are 2 or 3; restores and re-layouts see more).
_PREFIXES_KEPT = 64


def segment_interval(retention_ms: int) -> int:
    """Kafka Streams' default: half the retention, at least a minute (so 2 or 3 live segments)."""
    return max(retention_ms // 2, MIN_SEGMENT_INTERVAL_MS)


def time_bytes(time: int) -> bytes:
    """A time as it sits in logical keys: 8 bytes big-endian signed (non-negative times sort in order)."""
    return time.to_bytes(8, "big", signed=True)


class SegmentedStore(KeyValueStore):
    """Logical keys in segments of ``inner`` by the time found ``time_offset`` bytes from each key's end.

    ``time_offset`` says where a logical key's time sits: its 8 bytes start that many
    bytes before the end (window keys: 8, or 12 with a sequence number; session keys:
    16, the end time). Times are never negative.
    """

    def __init__(self, inner: KeyValueStore, retention_ms: int, time_offset: int) -> None:
        if retention_ms < 0:
            raise StateStoreError(f"store {inner.name}: retention_ms must be >= 0, not {retention_ms}")
        self.inner = inner
        self.name = inner.name
        self.retention_ms = retention_ms
        self.time_offset = time_offset
        self.interval = segment_interval(retention_ms)
        #: Where a logical key's time sits (a slice: one step per key on the hot paths).
        self._time_slice = slice(-time_offset, -time_offset + 8 or None)
        #: Segment id -> its physical key prefix, for the segments lately written or read.
        self._prefixes: dict[int, bytes] = {}
        self._load()

    def _load(self) -> None:
        observed = self.inner.get(_OBSERVED_KEY)
        #: The highest time written to the inner store (committed data only).
        self.observed_time = NO_TIME if observed is None else int.from_bytes(observed, "big", signed=True)
        #: Segments below this one are known to be gone from the inner store.
        self._dropped_below = 0
        self._pending_time = NO_TIME
        self._pending_discards = -1
        stored = self.inner.get(_INTERVAL_KEY)
        if stored is not None and int.from_bytes(stored, "big") != self.interval:
            self._lay_out_again()

    def _lay_out_again(self) -> None:
        """Move every entry into the segments of the current interval, in one atomic batch."""
        logical = [(key[_PREFIX_SIZE:], value) for key, value in self.inner.range(_DATA, _DATA_END)]
        entries: list[Entry] = [(self._physical(key), value) for key, value in logical]
        entries.append((_INTERVAL_KEY, self.interval.to_bytes(8, "big")))
        self.inner.write_batch(entries, None, [(_DATA, _DATA_END)])

    def time_of(self, key: bytes) -> int:
        """The time a logical key is segmented by."""
        return int.from_bytes(key[self._time_slice], "big", signed=True)

    def _physical(self, key: bytes) -> bytes:
        return self._prefix(self.time_of(key) // self.interval) + key

    def _prefix(self, segment: int) -> bytes:
        prefixes = self._prefixes
        prefix = prefixes.get(segment)
        if prefix is None:
            if len(prefixes) > _PREFIXES_KEPT:
                prefixes.clear()
            prefix = prefixes[segment] = _DATA + segment.to_bytes(8, "big")
        return prefix

    # -- observed time, committed and not --------------------------------------------

    def observe(self, time: int, discards: int) -> int:
        """Note an uncommitted write at ``time``; returns the observed time reads now use.

        ``discards`` is the write cache's discard count: pending writes of an earlier
        count were discarded with their transaction, and so is what they observed.
        """
        if discards != self._pending_discards:
            self._pending_discards = discards
            self._pending_time = self.observed_time
        if time > self._pending_time:
            self._pending_time = time
        return self._pending_time

    def current_time(self, discards: int) -> int:
        """The observed time including uncommitted writes (of the same discard count)."""
        if discards != self._pending_discards:
            return self.observed_time
        return max(self._pending_time, self.observed_time)

    def live_from(self, observed: int) -> int:
        """The earliest live time when ``observed`` is the observed time (Kafka Streams' rule)."""
        return max(observed - self.retention_ms + 1, 0)

    # -- reads -------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(self._physical(key))

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """``get`` of each logical key (for a write cache's ``get_many``)."""
        get, time_slice, interval, prefix = self.inner.get, self._time_slice, self.interval, self._prefix
        return [get(prefix(int.from_bytes(key[time_slice], "big", signed=True) // interval) + key) for key in keys]

    def scan(self, start: bytes | None, end: bytes | None, reverse: bool = False,
             time_from: int = 0, time_to: int = MAX_TIME) -> Iterator[tuple[bytes, bytes]]:
        """Logical entries in ``[start, end)`` in key order, searching only segments that can hold times in
        ``[time_from, time_to]``; the caller filters on time (segments are coarser than that)."""
        interval = self.interval
        first = max(time_from, self.live_from(self.observed_time)) // interval
        last = min(time_to, self.observed_time) // interval
        if self.observed_time == NO_TIME or first > last:
            return iter(())
        scans = [self._segment_scan(segment, start, end, reverse) for segment in range(first, last + 1)]
        if len(scans) == 1:
            return scans[0]
        return heapq.merge(*scans, reverse=reverse)

    def _segment_scan(self, segment: int, start: bytes | None, end: bytes | None,
                      reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        prefix = _DATA + segment.to_bytes(8, "big")
        high = prefix_end(prefix) if end is None else prefix + end
        for key, value in self.inner.range(prefix if start is None else prefix + start, high, reverse):
            yield key[_PREFIX_SIZE:], value

    def range(self, start: bytes | None, end: bytes | None, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        return self.scan(start, end, reverse)

    def approximate_count(self) -> int:
        return self.inner.approximate_count()

    # -- writes ------------------------------------------------------------------------

    def put(self, key: bytes, value: bytes) -> None:
        self.write_batch([(key, value)], None)

    def delete(self, key: bytes) -> None:
        self.write_batch([(key, None)], None)

    def write_batch(self, entries: Iterable[Entry], changelog_offset: int | None,
                    drop_ranges: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Write logical entries into their segments and drop the segments that expired.

        Entries of segments that are already expired are skipped, as Kafka Streams does.
        """
        if drop_ranges:
            raise StateStoreError(f"store {self.name} drops its expired segments itself; "
                                  "write windows and sessions through their stores")
        physical, drops, observed, live = self._stage(entries)
        self.inner.write_batch(physical, changelog_offset, drops)
        self._staged(observed, live)

    def bulk_load(self, entries: Mapping[bytes, bytes | None], next_offset: int,
                  drop_ranges: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """``write_batch``'s segments and drops, bulk loaded into the inner store (no entry is in a dropped segment)."""
        if drop_ranges:
            raise StateStoreError(f"store {self.name} drops its expired segments itself")
        physical, drops, observed, live = self._stage(entries.items())
        self.inner.bulk_load(dict(physical), next_offset, drops)
        self._staged(observed, live)

    def _stage(self, entries: Iterable[Entry]) -> tuple[list[Entry], list[tuple[bytes, bytes]], int, int]:
        """The physical entries (live segments only, plus metadata), the segments to drop, the new
        observed time and the first live segment."""
        interval, time_slice, prefix = self.interval, self._time_slice, self._prefix
        observed = self.observed_time
        staged: list[tuple[int, bytes, bytes | None]] = []
        for key, value in entries:
            time = int.from_bytes(key[time_slice], "big", signed=True)
            if time > observed:
                observed = time
            staged.append((time // interval, key, value))
        live = max(observed - self.retention_ms, 0) // interval
        physical: list[Entry] = [(prefix(segment) + key, value) for segment, key, value in staged if segment >= live]
        physical.append((_OBSERVED_KEY, time_bytes(observed)))
        physical.append((_INTERVAL_KEY, interval.to_bytes(8, "big")))
        drops = [(_DATA, _DATA + live.to_bytes(8, "big"))] if live > self._dropped_below else []
        return physical, drops, observed, live

    def _staged(self, observed: int, live: int) -> None:
        self.observed_time = observed
        self._dropped_below = max(self._dropped_below, live)

    # -- lifecycle ---------------------------------------------------------------------

    def changelog_offset(self) -> int | None:
        return self.inner.changelog_offset()

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def wipe(self) -> None:
        self.inner.wipe()
        self._load()

    def destroy(self) -> None:
        self.inner.destroy()
