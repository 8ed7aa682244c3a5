"""Restoring an empty store by bulk loading: sorted SST files ingested into RocksDB.

A store restored from nothing (a lost disk, a new worker: no changelog offset of its
own) need not go through write batches, memtables, flushes and compactions: the
restorer collects the changelog's records in a ``RestoreBuffer`` (the latest value of
each key, a tombstone as None), and every so often the store writes the buffer, in key
order, to one SST file and ingests it (``RocksDBStore.bulk_load``).

Changelog records come in offset order, not key order, so each buffer is sorted when
it is written, and a key written twice in one buffer keeps its last value (later
offsets win). Across buffers, RocksDB gives each ingested file a sequence number newer
than everything already in the store, so a later file overrides an earlier one: the
order of ingestion is the order of the changelog. Tombstones are delete entries in the
file, so a key deleted after an earlier file put it is deleted once both are in.

Exactly-once is unchanged: a store's recorded changelog offset never claims data it
lacks. The file is ingested first (durable at once: RocksDB records it in its
manifest), and only then is the offset it reaches written and flushed. A crash in
between leaves data *newer* than the recorded offset, never older. The next restore
then replays the changelog from the recorded offset (or from the start, if none was
recorded yet) over that data, which is
idempotent for a changelog: every key written after the recorded offset is written
again by the replay, last value last, and every other key already holds its value as
of that offset. The result is the store a clean restore builds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the restorer imports this module: no RocksDB until a store is opened
    from rocksdict import Options

#: An SST file of about this many bytes of keys and values is written per buffer flush.
SST_TARGET_BYTES = 8 * 1024 * 1024


class RestoreBuffer:
    """The latest value of each key of a restore's records since the last flush; None is a tombstone."""

    __slots__ = ("entries", "bytes", "records", "next_offset")

    def __init__(self) -> None:
        self.entries: dict[bytes, bytes | None] = {}
        #: Keys plus values added, overwritten ones included: a bound on what the buffer holds.
        self.bytes = 0
        #: Changelog records added since the last flush.
        self.records = 0
        #: The changelog offset after the last record added.
        self.next_offset: int | None = None

    def add(self, entries: Iterable[tuple[bytes, bytes | None]], count: int, sizes: int, next_offset: int) -> None:
        """Add ``count`` records in offset order; ``sizes`` is their keys' and values' bytes."""
        self.entries.update(entries)
        self.bytes += sizes
        self.records += count
        self.next_offset = next_offset

    def clear(self) -> None:
        self.entries = {}
        self.bytes = self.records = 0


def write_sst(path: Path, entries: Mapping[bytes, bytes | None], options: Options) -> bool:
    """Write ``entries`` to a new SST file at ``path`` in key order; False if there was nothing to write."""
    from rocksdict import SstFileWriter

    if not entries:
        return False
    writer = SstFileWriter(options)
    writer.open(str(path))
    for key in sorted(entries):
        value = entries[key]
        if value is None:
            del writer[key]
        else:
            writer[key] = value
    writer.finish()
    return True


def remove_leftovers(paths: Iterable[Path]) -> None:
    """Delete SST files an ingestion did not move into the store (it failed, or copied them)."""
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
