"""The per-task write cache that keeps uncommitted state out of the store.

Processors read and write through the cache. Writes stay in memory until the runtime
commits: it produces ``dirty_entries()`` to the changelog and, once the transaction (or
the produce acks) succeeded, calls ``apply(offset)``, which writes them and the changelog
offset to the store in one batch. On abort it calls ``discard()``. So the store only ever
holds committed data, which is what exactly-once needs from it.

The cache also collapses repeated writes to a key between commits into one changelog
record and one store write.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, insort
from collections.abc import Iterator

from streamer.state.store import Entry, KeyValueStore, prefix_end


class WriteCache:
    """Dirty entries (None marks a pending delete) in front of a KeyValueStore."""

    __slots__ = ("store", "_dirty", "_dirty_bytes", "_sorted_keys")

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        self._dirty: dict[bytes, bytes | None] = {}
        self._dirty_bytes = 0
        # Sorted dirty keys, kept up to date only once a scan asked for them: caches
        # that are never scanned (counts, aggregates) pay nothing for ordering.
        self._sorted_keys: list[bytes] | None = None

    @property
    def name(self) -> str:
        return self.store.name

    @property
    def dirty_count(self) -> int:
        """Keys written since the last apply or discard."""
        return len(self._dirty)

    @property
    def dirty_bytes(self) -> int:
        """Key and value bytes held by the dirty entries, to commit early when the cache grows."""
        return self._dirty_bytes

    def get(self, key: bytes) -> bytes | None:
        dirty = self._dirty
        if key in dirty:
            return dirty[key]
        return self.store.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._set(key, value)

    def delete(self, key: bytes) -> None:
        """Hide ``key`` now and delete it from the store and the changelog at commit."""
        self._set(key, None)

    def _set(self, key: bytes, value: bytes | None) -> None:
        dirty = self._dirty
        size = 0 if value is None else len(value)
        if key in dirty:
            old = dirty[key]
            self._dirty_bytes += size - (0 if old is None else len(old))
        else:
            self._dirty_bytes += len(key) + size
            if self._sorted_keys is not None:
                insort(self._sorted_keys, key)
        dirty[key] = value

    def range(self, start: bytes | None, end: bytes | None, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """The store's entries in ``[start, end)`` with the dirty ones laid over them.

        Like the store's scans, the result reflects the moment of the call.
        """
        stored = self.store.range(start, end, reverse)
        if not self._dirty:
            return stored
        keys = self._sorted_keys
        if keys is None:
            keys = self._sorted_keys = sorted(self._dirty)
        low = 0 if start is None else bisect_left(keys, start)
        high = len(keys) if end is None else bisect_left(keys, end)
        if low >= high:
            return stored
        dirty = self._dirty
        overlay = [(key, dirty[key]) for key in keys[low:high]]
        if reverse:
            overlay.reverse()
        return _merge(stored, overlay, reverse)

    def prefix(self, prefix: bytes, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        return self.range(prefix, prefix_end(prefix), reverse)

    def dirty_entries(self) -> list[Entry]:
        """The latest value of each key written since the last commit (None = deleted)."""
        return list(self._dirty.items())

    def apply(self, changelog_offset: int | None) -> None:
        """Write the dirty entries and the changelog offset they reach to the store, then forget them.

        Call only after the changelog records of ``dirty_entries()`` are committed. If the
        store write fails the entries stay dirty, so a retry applies them again.
        """
        if self._dirty or changelog_offset is not None:
            self.store.write_batch(self._dirty.items(), changelog_offset)
        self.discard()

    def discard(self) -> None:
        """Forget the dirty entries: the transaction that made them was aborted."""
        self._dirty.clear()
        self._dirty_bytes = 0
        self._sorted_keys = None


def _merge(stored: Iterator[tuple[bytes, bytes]], overlay: list[Entry],
           reverse: bool) -> Iterator[tuple[bytes, bytes]]:
    """Merge two scans in the same order; on equal keys the overlay wins and None hides the key."""
    before = operator.gt if reverse else operator.lt
    current = next(stored, None)
    for key, value in overlay:
        while current is not None and before(current[0], key):
            yield current
            current = next(stored, None)
        if current is not None and current[0] == key:
            current = next(stored, None)
        if value is not None:
            yield key, value
    if current is not None:
        yield current
        yield from stored
