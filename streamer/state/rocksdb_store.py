"""The default store: RocksDB through rocksdict, in raw bytes mode, with the WAL off.

Why the WAL is off: the changelog topic is the durable copy of every store, so the
local copy only has to be *consistent*, never complete. After a crash the store may
have lost its newest writes, and restore replays them from the changelog, starting at
the offset the store reports. That is only correct if the reported offset never runs
ahead of the data it describes. Three things guarantee it:

* Data and offset are written in one WriteBatch, so they enter the memtables together
  (RocksDB never switches memtables in the middle of a batch).
* Data and offset live in two column families, and ``atomic_flush`` makes every
  automatic flush persist the memtables of both at once: what survives a kill -9 is
  the state after some whole batch, never data of one batch with the offset of another.
* Manual flushes (``flush``/``close``) go data first, then bookkeeping, so in between
  the persisted offset can only lag, which costs a longer restore, never lost data.

A separate column family (rather than a reserved key) keeps the offset out of scans
and counts without touching user keys on the hot path.

A store is only a cache of its changelog, so one whose files RocksDB finds damaged or
missing (at open, or later, in a read or a background compaction: the store then gets a
``<name>.damaged`` marker beside it) is deleted and opened empty, with a WARNING, and
the restore rebuilds it; a second failure, and every other RocksDB error (a full disk,
a permission, another process holding the store's lock), is raised. Deleting is one
rename (``streamer.state.files``): a kill in the middle of RocksDB's own file-by-file
delete left a store that no longer opens, the cause of a worker exiting at every restart.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import cast

from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    IngestExternalFileOptions,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from streamer.errors import StateStoreError, StoreCorruptedError, StoreLockedError
from streamer.state.files import finish_removals, remove_dir, write_atomically
from streamer.state.sst_restore import remove_leftovers, write_sst
from streamer.state.store import Entry, KeyValueStore

#: Column family of the bookkeeping; the default column family holds only user data.
META_COLUMN_FAMILY = "streamer_meta"
_OFFSET_KEY = b"changelog_offset"
#: Beside a store RocksDB found damaged while it was open: its next open rebuilds it.
DAMAGED_SUFFIX = ".damaged"

log = logging.getLogger("streamer.state")

#: Per-store memtable size: small enough for many tasks per worker, big enough for long restores.
_WRITE_BUFFER_BYTES = 16 * 1024 * 1024
_MAX_WRITE_BUFFERS = 3
#: One block cache for every store of the process, so memory does not grow with the task count.
_BLOCK_CACHE_BYTES = 64 * 1024 * 1024


@cache
def _block_cache() -> Cache:
    """Made at the first open, not at import: ``import streamer`` must not allocate native memory."""
    return Cache(_BLOCK_CACHE_BYTES)


def _options() -> Options:
    """Options for both column families (rocksdict insists they agree on raw mode)."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_atomic_flush(True)
    options.set_write_buffer_size(_WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(_MAX_WRITE_BUFFERS)
    options.set_max_background_jobs(2)
    options.set_compression_type(DBCompressionType.lz4())
    options.set_keep_log_file_num(2)
    table = BlockBasedOptions()
    table.set_block_cache(_block_cache())
    table.set_bloom_filter(10, False)  # most gets in aggregations miss on a new key
    options.set_block_based_table_factory(table)
    return options


def _damaged(error: Exception) -> bool:
    """RocksDB's words for damaged or missing files, unlike a full disk, a permission or a lock."""
    text = str(error)
    return text.startswith("Corruption:") or text.startswith("IO error: No such file or directory")


def _locked(error: Exception) -> bool:
    """RocksDB's words for a store another process (or a live instance in this one) has open."""
    text = str(error)
    return text.startswith("IO error:") and ("While lock file" in text or "lock hold by current process" in text)


def _write_options() -> WriteOptions:
    options = WriteOptions()
    options.disable_wal = True  # type: ignore[method-assign,assignment]  # a property; the stub says method
    return options


class RocksDBStore(KeyValueStore):
    """A store in ``<directory>/<name>``; raises StateStoreError for every RocksDB failure.

    A damaged store is rebuilt empty once at open (see the module docstring).
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.name = name
        self.path = directory / name
        self._marker = directory / (name + DAMAGED_SUFFIX)
        self._write_options = _write_options()
        self._closed = True
        try:
            self._open()
        except StoreCorruptedError as error:
            log.warning("%s; deleting it and opening it empty, to be restored from its changelog", error)
            self._remove_files()
            self._open()
        # What a kill left of a bulk load or a removal; only now, as the lock says nobody else loads.
        remove_leftovers(directory.glob(f"{name}.restore-*.sst"))
        finish_removals(directory)

    def _open(self) -> None:
        if self._marker.exists():
            raise StoreCorruptedError(f"RocksDB store {self.name} at {self.path} was found damaged while open: "
                                      f"{self._marker.read_text(errors='replace').strip()}")
        options = _options()
        handles: list[Rdict] = []
        try:
            db = Rdict(str(self.path), options, column_families={META_COLUMN_FAMILY: options})
            handles.append(db)
            db.set_write_options(self._write_options)  # put/delete too: no write may outlive an older one
            meta = db.get_column_family(META_COLUMN_FAMILY)
            handles.append(meta)
            stored = meta.get(_OFFSET_KEY)
            if stored is not None and len(stored) != 8:
                raise StoreCorruptedError(f"RocksDB store {self.name} at {self.path} is damaged: its changelog "
                                          f"offset is {len(stored)} bytes, not 8")
        except Exception as error:
            for handle in handles:  # each keeps RocksDB open, so that it could not be deleted
                with contextlib.suppress(Exception):  # the error at hand says more than a failed close
                    handle.close()
            if isinstance(error, StoreCorruptedError):
                raise
            raise self._open_error(error) from error
        self._db, self._meta = db, meta
        self._offset: int | None = None if stored is None else int.from_bytes(stored, "big")
        self._closed = False

    def _open_error(self, error: Exception) -> StateStoreError:
        where = f"RocksDB store {self.name} at {self.path}"
        if _damaged(error):
            return StoreCorruptedError(f"{where} is damaged: {error}")
        if _locked(error):
            return StoreLockedError(f"cannot open {where}: it is open already ({error}). Is another worker using "
                                    "the same state_dir? Give each worker on a machine its own --state-dir")
        return StateStoreError(f"cannot open {where}: {error}")

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._db.get(key)
        except Exception as error:
            raise self._error("read", error) from error
        return value

    def put(self, key: bytes, value: bytes) -> None:
        try:
            self._db.put(key, value)
        except Exception as error:
            raise self._error("write", error) from error

    def delete(self, key: bytes) -> None:
        try:
            self._db.delete(key)
        except Exception as error:
            raise self._error("write", error) from error

    def range(self, start: bytes | None, end: bytes | None, reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        if start is not None and end is not None and start >= end:
            return iter(())
        # Only the upper bound goes to RocksDB: rocksdict 0.3.29's set_iterate_lower_bound
        # sets the upper bound, so the lower side is a seek (forward) or a check (reverse).
        read_options = ReadOptions()
        if end is not None:
            read_options.set_iterate_upper_bound(end)
        try:
            if reverse:
                return _down_to(_raw(self._db.items(backwards=True, read_opt=read_options)), start, read_options)
            items = _raw(self._db.items(from_key=start, read_opt=read_options))
        except Exception as error:
            raise self._error("scan", error) from error
        return items if end is None else _pinned(items, read_options)

    def approximate_count(self) -> int:
        try:
            count = self._db.property_int_value("rocksdb.estimate-num-keys")
        except Exception as error:
            raise self._error("count", error) from error
        return count or 0

    def approximate_bytes(self) -> int:
        """Roughly the bytes it holds: live data in its SST files plus its memtables (RocksDB's estimates)."""
        try:
            on_disk = self._db.property_int_value("rocksdb.estimate-live-data-size")
            in_memory = self._db.property_int_value("rocksdb.cur-size-all-mem-tables")
        except Exception as error:
            raise self._error("measure", error) from error
        return (on_disk or 0) + (in_memory or 0)

    def write_batch(self, entries: Iterable[Entry], changelog_offset: int | None,
                    drop_ranges: Sequence[tuple[bytes, bytes]] = ()) -> None:
        batch = WriteBatch(raw_mode=True)
        for start, end in drop_ranges:  # one range tombstone each, before the puts so they survive it
            batch.delete_range(start, end)
        put, delete = batch.put, batch.delete
        for key, value in entries:
            if value is None:
                delete(key)
            else:
                put(key, value)
        try:
            if changelog_offset is not None:
                # A handle per batch, not per store: a held handle would keep RocksDB open after close().
                batch.put(_OFFSET_KEY, changelog_offset.to_bytes(8, "big"),
                          self._db.get_column_family_handle(META_COLUMN_FAMILY))
            self._db.write(batch, self._write_options)
        except Exception as error:
            raise self._error("write a batch to", error) from error
        if changelog_offset is not None:
            self._offset = changelog_offset

    def bulk_load(self, entries: Mapping[bytes, bytes | None], next_offset: int,
                  drop_ranges: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Write ``entries`` to a sorted SST file and ingest it, then record the offset (and drops) in one batch.

        Ingestion comes first, so the recorded offset can only lag the data: see
        ``streamer.state.sst_restore`` for why a crash in between is harmless. The offset is
        flushed at once (one small file per ingested one): in the memtable it would die with
        a kill -9 while the ingested data lives on, and the next restore would begin again
        from the start of the changelog however much was loaded.
        """
        path = self.path.parent / f"{self.name}.restore-{next_offset}.sst"
        try:
            if write_sst(path, entries, _options()):
                ingest = IngestExternalFileOptions()
                ingest.set_move_files(True)  # a hard link: the file's bytes are written once
                self._db.ingest_external_file([str(path)], ingest)
        except Exception as error:
            raise self._error("ingest a restored SST file into", error) from error
        finally:
            remove_leftovers([path])
        self.write_batch((), next_offset, drop_ranges)
        self.flush()

    def changelog_offset(self) -> int | None:
        return self._offset

    def flush(self) -> None:
        """Persist the memtables; a closed store has (its close flushed), so a task released twice is fine."""
        if self._closed:
            return
        try:
            self._db.flush()
            self._meta.flush()
        except Exception as error:
            raise self._error("flush", error) from error

    def close(self) -> None:
        """Flush data, then bookkeeping, then release RocksDB (iterators still open keep it alive)."""
        if self._closed:
            return
        self._closed = True
        failures: list[Exception] = []
        for handle in (self._db, self._meta):  # data first: the persisted offset may lag, never lead
            try:
                handle.close()
            except Exception as error:
                failures.append(error)
        if failures:
            raise self._error("close", failures[0]) from failures[0]

    def wipe(self) -> None:
        self.close()
        self._remove_files()
        self._open()

    def destroy(self) -> None:
        self.close()
        self._remove_files()

    def _remove_files(self) -> None:
        """Delete the store's directory in one step, then its damage marker (a crash in between: deleted again)."""
        self._check_released()
        remove_dir(self.path)
        self._marker.unlink(missing_ok=True)

    def _check_released(self) -> None:
        """Refuse while RocksDB still has the store open after ``close`` (an iterator over it is alive): that
        instance would go on writing files into the new store at the same path."""
        probe = _options()
        probe.create_if_missing(False)
        try:
            Rdict(str(self.path), probe, column_families={META_COLUMN_FAMILY: probe}).close()
        except Exception as error:  # missing or damaged: nobody has it open
            if _locked(error):
                raise StateStoreError(f"cannot delete RocksDB store {self.name} at {self.path}: {error}. "
                                      "Is an iterator over it still open?") from error

    def _error(self, action: str, error: Exception) -> StateStoreError:
        """The error to raise for a failed operation; a damaged store is marked, so its next open rebuilds it."""
        where = f"RocksDB store {self.name} at {self.path}{' (it is closed)' if self._closed else ''}"
        if not _damaged(error):
            return StateStoreError(f"cannot {action} {where}: {error}")
        with contextlib.suppress(OSError):  # a disk that takes no marker fails the open itself
            write_atomically(self._marker, f"cannot {action} it: {error}".encode())
        return StoreCorruptedError(f"cannot {action} {where}: it is damaged ({error}); it is deleted and "
                                   "restored from its changelog when it is opened next")


def _raw(items: object) -> Iterator[tuple[bytes, bytes]]:
    """rocksdict types items for every mode; in raw mode keys and values are bytes."""
    return cast(Iterator[tuple[bytes, bytes]], items)


def _pinned(items: Iterator[tuple[bytes, bytes]], read_options: ReadOptions) -> Iterator[tuple[bytes, bytes]]:
    """Hold ``read_options`` while ``items`` runs.

    rocksdict's iterator points into the ReadOptions' copy of the upper bound without
    keeping the ReadOptions alive: once it is collected the bound is garbage and scans
    stop early. Being this generator's argument keeps it alive (costs ~8% of scan speed).
    """
    yield from items


def _down_to(items: Iterator[tuple[bytes, bytes]], start: bytes | None,
             read_options: ReadOptions) -> Iterator[tuple[bytes, bytes]]:
    """A descending scan cut off below ``start``; holds ``read_options`` alive like ``_pinned``."""
    if start is None:
        yield from items
        return
    for item in items:
        if item[0] < start:
            return
        yield item
