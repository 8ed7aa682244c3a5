"""The contract every state store keeps: a sorted map of raw bytes plus changelog bookkeeping.

Stores know nothing of serdes, tasks or Kafka. Keys and values are the bytes the
processors' serdes produce; range scans follow unsigned byte order, the order both
RocksDB and Python's ``bytes`` comparison use.

Bookkeeping (the changelog offset a store reflects) never shares the user key space:
user keys are arbitrary bytes, so no reserved key could be told apart from a real one
without escaping every key on the hot path. Each implementation keeps the offset beside
the data instead (RocksDB: a separate column family; memory: an attribute), so ``range``,
``prefix`` and ``approximate_count`` never see it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence

#: One change as it travels to a store or a changelog: ``None`` as value deletes the key.
Entry = tuple[bytes, bytes | None]


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix``; None if unbounded.

    Trailing 0xff bytes cannot be incremented, so they are dropped first: all keys
    starting with ``b"a\\xff"`` sort below ``b"b"``.
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes((stripped[-1] + 1,))


class KeyValueStore(ABC):
    """A local key-value store of one task, rebuilt from its changelog when lost."""

    name: str

    @abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or None."""

    @abstractmethod
    def put(self, key: bytes, value: bytes) -> None:
        """Store ``value`` under ``key`` outside any batch; offset bookkeeping is left as is."""

    @abstractmethod
    def delete(self, key: bytes) -> None:
        """Remove ``key`` if present."""

    @abstractmethod
    def range(self, start: bytes | None, end: bytes | None, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Entries with ``start <= key < end`` in byte order (descending if ``reverse``).

        None leaves that side open. The iterator sees the store as it was when
        ``range`` was called, so callers may write while they iterate.
        """

    def prefix(self, prefix: bytes, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with ``prefix``, in byte order."""
        return self.range(prefix, prefix_end(prefix), reverse)

    @abstractmethod
    def approximate_count(self) -> int:
        """Roughly how many keys the store holds; cheap, so it may be off (RocksDB estimates)."""

    @abstractmethod
    def write_batch(self, entries: Iterable[Entry], changelog_offset: int | None,
                    drop_ranges: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Delete every key in each ``[start, end)`` of ``drop_ranges``, then apply ``entries`` in
        order and, if given, record ``changelog_offset``, all atomically.

        ``changelog_offset`` is the next changelog offset to restore from (last applied
        offset + 1). None keeps the recorded offset, for stores without a changelog.
        ``drop_ranges`` is how segmented stores expire whole segments at once.
        """

    def restore_batch(self, entries: Iterable[Entry], next_offset: int) -> None:
        """Apply one fetch of changelog records during restore; ``next_offset`` follows the last one.

        A restore batch always moves the offset, which is what makes a restore that
        is interrupted resumable from where it stopped.
        """
        self.write_batch(entries, next_offset)

    def bulk_load(self, entries: Mapping[bytes, bytes | None], next_offset: int,
                  drop_ranges: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Apply restored records (the latest value of each key) to a store the restore found empty.

        Unlike ``restore_batch`` the order of ``entries`` carries no meaning: each key is
        there once. ``drop_ranges`` never cover a key of ``entries``. Stores that can build
        files directly do (RocksDB: ``streamer.state.sst_restore``); the default is one batch.
        """
        self.write_batch(entries.items(), next_offset, drop_ranges)

    @abstractmethod
    def changelog_offset(self) -> int | None:
        """The changelog offset to resume restoring from; None if none was ever recorded."""

    @abstractmethod
    def flush(self) -> None:
        """Make everything written so far survive a crash of this process."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the store; closing twice is harmless."""

    @abstractmethod
    def wipe(self) -> None:
        """Empty the store, bookkeeping included, and leave it open for a fresh restore."""

    @abstractmethod
    def destroy(self) -> None:
        """Close the store and delete its files."""
