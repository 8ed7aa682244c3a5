"""An in-memory store: the same contract as RocksDB, for tests, the test driver and small state.

Nothing survives the process, bookkeeping included: a reopened memory store reports no
changelog offset, so the runtime restores it from the start of its changelog. That is
the honest answer, since none of the data it described is still there.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

from streamer.state.store import Entry, KeyValueStore


class MemoryStore(KeyValueStore):
    """A dict for point access plus a sorted key list rebuilt lazily for scans.

    Writes only mark the key list stale when they add or remove a key, so a workload of
    updates to known keys never sorts; the first scan after new keys sorts once.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._data: dict[bytes, bytes] = {}
        self._sorted_keys: list[bytes] | None = []
        self._offset: int | None = None

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        data = self._data
        if key not in data:
            self._sorted_keys = None
        data[key] = value

    def delete(self, key: bytes) -> None:
        if self._data.pop(key, None) is not None:
            self._sorted_keys = None

    def range(self, start: bytes | None, end: bytes | None, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        keys = self._sorted_keys
        if keys is None:
            keys = self._sorted_keys = sorted(self._data)
        low = 0 if start is None else bisect_left(keys, start)
        high = len(keys) if end is None else bisect_left(keys, end)
        data = self._data
        # Copied now, so writes during the iteration do not show, as with a RocksDB iterator.
        entries = [(key, data[key]) for key in keys[low:high]]
        if reverse:
            entries.reverse()
        return iter(entries)

    def approximate_count(self) -> int:
        return len(self._data)

    def write_batch(self, entries: Iterable[Entry], changelog_offset: int | None,
                    drop_ranges: Sequence[tuple[bytes, bytes]] = ()) -> None:
        data = self._data
        removed_any = False
        for start, end in drop_ranges:
            for key, _ in self.range(start, end):
                del data[key]
                removed_any = True
        size_before = len(data)
        for key, value in entries:
            if value is None:
                if data.pop(key, None) is not None:
                    removed_any = True
            else:
                data[key] = value
        if removed_any or len(data) != size_before:
            self._sorted_keys = None
        if changelog_offset is not None:
            self._offset = changelog_offset

    def changelog_offset(self) -> int | None:
        return self._offset

    def flush(self) -> None:
        """Nothing to do: memory does not survive a crash however it is flushed."""

    def close(self) -> None:
        """Nothing to release; the data stays readable until the object goes away."""

    def wipe(self) -> None:
        self._data.clear()
        self._sorted_keys = []
        self._offset = None

    def destroy(self) -> None:
        self.wipe()
