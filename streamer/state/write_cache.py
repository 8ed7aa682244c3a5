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
from collections.abc import Callable, Iterator

from streamer.state.store import Entry, KeyValueStore, prefix_end

#: Keys per chunk of the sorted dirty keys: an insert moves at most twice this many pointers.
_CHUNK = 1024


class WriteCache:
    """Dirty entries (None marks a pending delete) in front of a KeyValueStore."""

    __slots__ = ("store", "discards", "dirty_bytes", "_dirty", "_sorted", "_unsorted")

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        #: Bumps at every ``discard``: layers that keep uncommitted bookkeeping of their own
        #: (a window store's observed time, a buffer's lowest time) drop it when this changes.
        self.discards = 0
        #: Bytes of keys and values written since the last apply or discard, overwrites counted
        #: again (a bound, not the exact size; one ``len`` per write): commits come early past a limit.
        self.dirty_bytes = 0
        self._dirty: dict[bytes, bytes | None] = {}
        # The dirty keys in order, built at the first scan only: caches that are never
        # scanned (counts, aggregates) pay nothing for ordering. Keys new since the last
        # scan wait unsorted in ``_unsorted`` and join ``_sorted`` at the next scan.
        self._sorted: _SortedKeys | None = None
        self._unsorted: list[bytes] = []

    @property
    def name(self) -> str:
        return self.store.name

    @property
    def dirty_count(self) -> int:
        """Keys written since the last apply or discard."""
        return len(self._dirty)

    def get(self, key: bytes) -> bytes | None:
        dirty = self._dirty
        if key in dirty:
            return dirty[key]
        return self.store.get(key)

    def get_many(self, keys: list[bytes],
                 load: Callable[[list[bytes]], list[bytes | None]] | None = None) -> list[bytes | None]:
        """``get`` of each key; ``load`` reads the keys that are not dirty from the store in one call
        (by default one ``get`` each)."""
        dirty = self._dirty
        missing = [key for key in keys if key not in dirty]
        if not missing:
            return [dirty[key] for key in keys]
        stored = dict(zip(missing, (load or self._load_each)(missing)))
        return [dirty[key] if key in dirty else stored[key] for key in keys]

    def _load_each(self, keys: list[bytes]) -> list[bytes | None]:
        get = self.store.get
        return [get(key) for key in keys]

    def put(self, key: bytes, value: bytes) -> None:
        dirty = self._dirty
        if self._sorted is not None and key not in dirty:
            self._unsorted.append(key)
        dirty[key] = value
        self.dirty_bytes += len(key) + len(value)

    def delete(self, key: bytes) -> None:
        """Hide ``key`` now and delete it from the store and the changelog at commit."""
        dirty = self._dirty
        if self._sorted is not None and key not in dirty:
            self._unsorted.append(key)
        dirty[key] = None
        self.dirty_bytes += len(key)

    def delete_many(self, keys: list[bytes]) -> None:
        """``delete`` of each key."""
        dirty = self._dirty
        deleted = dict.fromkeys(keys)
        if self._sorted is not None:
            self._unsorted.extend(key for key in deleted if key not in dirty)
        dirty.update(deleted)
        self.dirty_bytes += sum(map(len, deleted))

    def range(self, start: bytes | None, end: bytes | None, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """The store's entries in ``[start, end)`` with the dirty ones laid over them.

        Like the store's scans, the result reflects the moment of the call.
        """
        return self.merge_scan(self.store.range(start, end, reverse), start, end, reverse)

    def merge_scan(self, stored: Iterator[tuple[bytes, bytes]], start: bytes | None, end: bytes | None,
                   reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """``stored``, a scan of the store over ``[start, end)`` in key order, with the dirty entries laid over it.

        For layers that scan the store themselves (segmented stores search only the
        segments a time range can be in).
        """
        if not self._dirty:
            return stored
        keys = self._sorted_keys().between(start, end)
        if not keys:
            return stored
        dirty = self._dirty
        overlay = [(key, dirty[key]) for key in keys]
        if reverse:
            overlay.reverse()
        return _merge(stored, overlay, reverse)

    def prefix(self, prefix: bytes, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        return self.range(prefix, prefix_end(prefix), reverse)

    def _sorted_keys(self) -> _SortedKeys:
        """The dirty keys in order, bringing in the keys written since the last scan.

        Many new keys are sorted with the rest at once; a few are inserted one by one,
        so a scan per record (windows) costs a chunk's insert per new key, not a list's.
        """
        ordered = self._sorted
        new = self._unsorted
        if ordered is None or len(new) > len(ordered) // 8:
            ordered = self._sorted = _SortedKeys(sorted(self._dirty))
        else:
            for key in new:
                ordered.add(key)
        new.clear()
        return ordered

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
        self._forget()

    def discard(self) -> None:
        """Forget the dirty entries: the transaction that made them was aborted."""
        self._forget()
        self.discards += 1

    def _forget(self) -> None:
        self._dirty.clear()
        self.dirty_bytes = 0
        self._sorted = None
        self._unsorted.clear()


class _SortedKeys:
    """Sorted distinct keys in chunks of at most ``2 * _CHUNK``, so an insert is a bisect and a short move.

    The keys of a write cache only grow between commits (a delete is a dirty key too),
    so there is no removal.
    """

    __slots__ = ("_chunks", "_maxes", "_count")

    def __init__(self, keys: list[bytes]) -> None:
        self._chunks = [keys[i:i + _CHUNK] for i in range(0, len(keys), _CHUNK)]
        self._maxes = [chunk[-1] for chunk in self._chunks]
        self._count = len(keys)

    def __len__(self) -> int:
        return self._count

    def add(self, key: bytes) -> None:
        """Insert a key not yet present."""
        chunks, maxes = self._chunks, self._maxes
        self._count += 1
        if not chunks:
            chunks.append([key])
            maxes.append(key)
            return
        index = bisect_left(maxes, key)
        if index == len(maxes):
            index -= 1
            chunk = chunks[index]
            chunk.append(key)
            maxes[index] = key
        else:
            chunk = chunks[index]
            insort(chunk, key)
        if len(chunk) > 2 * _CHUNK:
            chunks[index:index + 1] = [chunk[:_CHUNK], chunk[_CHUNK:]]
            maxes[index:index + 1] = [chunk[_CHUNK - 1], chunk[-1]]

    def between(self, start: bytes | None, end: bytes | None) -> list[bytes]:
        """The keys in ``[start, end)`` in order (None leaves that side open)."""
        chunks = self._chunks
        index = 0 if start is None else bisect_left(self._maxes, start)
        found: list[bytes] = []
        while index < len(chunks):
            chunk = chunks[index]
            low = 0 if start is None else bisect_left(chunk, start)
            start = None
            if end is not None and chunk[-1] >= end:
                found.extend(chunk[low:bisect_left(chunk, end)])
                break
            found.extend(chunk[low:] if low else chunk)
            index += 1
        return found


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
