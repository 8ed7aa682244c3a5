"""Bulk loading (restore from empty): the same store as write batches, for every layout; crashes in between.

A changelog of puts, overwrites and tombstones, in offset order, is restored two ways:
fetch by fetch as write batches (a store that had data), and buffered then bulk loaded
(RocksDB: sorted SST files ingested). The physical contents and the offset must agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from streamer.errors import StateStoreError
from streamer.state import KeyValueStore, StoreKind, open_layout
from streamer.state.rocksdb_store import RocksDBStore
from streamer.state.segmented import SegmentedStore, time_bytes
from streamer.state.sst_restore import RestoreBuffer
from streamer.state.store import Entry

MINUTE = 60_000
RETENTION = 2 * MINUTE
CHUNK = 97  # records per "fetch"

#: layout -> a changelog key of user key number ``n`` at time ``t``
LAYOUTS: dict[str, Callable[[int, int], bytes]] = {
    "key_value": lambda n, t: b"key-%04d" % n,
    "buffer": lambda n, t: time_bytes(t) + b"key-%04d" % n,
    "window": lambda n, t: b"key-%04d" % n + time_bytes(t - t % 10_000),
    "session": lambda n, t: b"key-%04d" % n + time_bytes(t) + time_bytes(t - t % 7_000),
}


def changelog(layout: str, records: int = 1500, seed: int = 7) -> list[Entry]:
    """Puts, overwrites (few keys, many writes) and tombstones, time rising past the retention."""
    rng = random.Random(seed)
    make = LAYOUTS[layout]
    written: list[bytes] = []
    out: list[Entry] = []
    for number in range(records):
        time = number * 200  # 300 s over 1500 records: windows and sessions expire along the way
        roll = rng.random()
        if written and roll < 0.15:
            out.append((rng.choice(written), None))
        elif written and roll < 0.45:
            out.append((rng.choice(written), b"over-%d" % number))
        else:
            key = make(rng.randrange(300), time)
            written.append(key)
            out.append((key, b"value-%d" % number))
    return out


def open_target(backend: StoreKind, layout: str, directory: Path) -> KeyValueStore:
    return open_layout(backend, directory, "store", layout, RETENTION if layout in ("window", "session") else None)


def contents(store: KeyValueStore) -> list[tuple[bytes, bytes]]:
    """Everything physically stored (segments, expired ones included, and metadata)."""
    inner = store.inner if isinstance(store, SegmentedStore) else store
    return list(inner.range(None, None))


def restore_in_batches(store: KeyValueStore, records: list[Entry], start: int = 0) -> None:
    for first in range(start, len(records), CHUNK):
        store.restore_batch(records[first:first + CHUNK], min(first + CHUNK, len(records)))


def restore_in_bulk(store: KeyValueStore, records: list[Entry], flush_every: int) -> None:
    """What the restorer does for a store that started empty: buffer fetches, bulk load every few."""
    buffer = RestoreBuffer()
    for number, first in enumerate(range(0, len(records), CHUNK), 1):
        chunk = records[first:first + CHUNK]
        buffer.add(chunk, len(chunk), 0, first + len(chunk))
        if number % flush_every == 0:
            assert buffer.next_offset is not None
            store.bulk_load(buffer.entries, buffer.next_offset)
            buffer.clear()
    if buffer.records:
        assert buffer.next_offset is not None
        store.bulk_load(buffer.entries, buffer.next_offset)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("flush_every", [1, 4, 1000])
def test_bulk_load_builds_the_store_write_batches_build(kind: StoreKind, layout: str, flush_every: int,
                                                        tmp_path: Path) -> None:
    records = changelog(layout)
    batched = open_target(kind, layout, tmp_path / "batched")
    bulk = open_target(kind, layout, tmp_path / "bulk")
    try:
        restore_in_batches(batched, records)
        restore_in_bulk(bulk, records, flush_every)
        assert contents(bulk) == contents(batched)
        assert bulk.changelog_offset() == batched.changelog_offset() == len(records)
        assert any(value is None for _, value in records) and len(contents(bulk)) > 10
    finally:
        batched.close()
        bulk.close()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_bulk_loaded_store_reopens_with_its_data_and_offset(layout: str, tmp_path: Path) -> None:
    records = changelog(layout)
    store = open_target("rocksdb", layout, tmp_path)
    restore_in_bulk(store, records, 3)
    expected = contents(store)
    store.close()
    reopened = open_target("rocksdb", layout, tmp_path)
    try:
        assert contents(reopened) == expected
        assert reopened.changelog_offset() == len(records)
        assert not list(tmp_path.glob("*.sst")), "SST files left beside the store"
    finally:
        reopened.close()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_crash_between_ingestion_and_offset_then_resume_gives_the_clean_result(
        layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second file is ingested but its offset never written: the replay from the first's offset fixes it."""
    records = changelog(layout)
    half = (len(records) // CHUNK // 2) * CHUNK
    clean = open_target("rocksdb", layout, tmp_path / "clean")
    restore_in_batches(clean, records)
    expected = contents(clean)
    clean.close()

    store = open_target("rocksdb", layout, tmp_path / "crashed")
    inner = store.inner if isinstance(store, SegmentedStore) else store
    assert isinstance(inner, RocksDBStore)
    store.bulk_load(dict(records[:CHUNK]), CHUNK)  # first buffer: one fetch, fully loaded
    rest = RestoreBuffer()
    rest.add(records[CHUNK:half], half - CHUNK, 0, half)

    def crash(*args: object, **kwargs: object) -> None:
        raise StateStoreError("killed before the offset was written")

    monkeypatch.setattr(inner, "write_batch", crash)
    with pytest.raises(StateStoreError, match="killed"):
        store.bulk_load(rest.entries, half)
    monkeypatch.undo()
    store.close()

    resumed = open_target("rocksdb", layout, tmp_path / "crashed")
    try:
        assert resumed.changelog_offset() == CHUNK  # data of the second file is there, its offset is not
        restore_in_batches(resumed, records, start=CHUNK)  # the restorer resumes with write batches
        assert contents(resumed) == expected
    finally:
        resumed.close()


def test_crash_before_the_first_offset_restores_from_the_start(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """No offset reached the disk, data did: the store counts as empty and is bulk loaded again over it."""
    records = changelog("key_value")
    store = RocksDBStore(tmp_path, "store")
    monkeypatch.setattr(store, "write_batch", lambda *args, **kwargs: (_ for _ in ()).throw(StateStoreError("x")))
    with pytest.raises(StateStoreError):
        store.bulk_load(dict(records[:500]), 500)
    monkeypatch.undo()
    store.close()
    again = RocksDBStore(tmp_path, "store")
    clean = RocksDBStore(tmp_path, "clean")
    try:
        assert again.changelog_offset() is None and contents(again)
        restore_in_bulk(again, records, 2)
        restore_in_batches(clean, records)
        assert contents(again) == contents(clean)
    finally:
        again.close()
        clean.close()
