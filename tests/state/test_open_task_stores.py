"""open_task_stores: each StoreSpec kind gets its layout, on RocksDB (the worker) and in memory (the driver)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.errors import StateStoreError
from streamer.runtime.task_stores import open_task_stores
from streamer.state import SegmentedStore, SessionStore, StoreKind, TimeOrderedBuffer, WindowStore
from streamer.topology.topology import StoreSpec, SubTopology


def subtopology(*stores: StoreSpec) -> SubTopology:
    return SubTopology(id=0, nodes=[], sources=[], sinks=[], stores=list(stores))


def test_every_kind_opens_with_its_layout(kind: StoreKind, tmp_path: Path) -> None:
    sub = subtopology(
        StoreSpec("counts"),
        StoreSpec("windows", kind="window", retention_ms=60_000),
        StoreSpec("joins", kind="window", retention_ms=60_000, retain_duplicates=True, logged=False),
        StoreSpec("sessions", kind="session", retention_ms=60_000),
        StoreSpec("buffer", kind="buffer"),
    )
    stores = open_task_stores(sub, 3, tmp_path, kind, "app")
    try:
        assert not isinstance(stores["counts"].store, SegmentedStore)
        WindowStore(stores["windows"], 60_000).put(b"k", 5, b"v")
        WindowStore(stores["joins"], 60_000, retain_duplicates=True).put(b"k", 5, b"v")
        SessionStore(stores["sessions"], 60_000).put(b"k", 5, 6, b"v")
        TimeOrderedBuffer(stores["buffer"]).put(5, b"k", b"v")
        assert stores.partition == 3
        logged = ("counts", "windows", "sessions", "buffer")
        assert stores.changelogs == {name: f"app-{name}-changelog" for name in logged}
    finally:
        stores.close()


def test_a_store_that_cannot_open_closes_the_others_and_says_why(tmp_path: Path) -> None:
    held = open_task_stores(subtopology(StoreSpec("b")), 0, tmp_path, "rocksdb", "app")
    try:
        with pytest.raises(StateStoreError, match="cannot open store b .*own --state-dir"):
            open_task_stores(subtopology(StoreSpec("a"), StoreSpec("b")), 0, tmp_path, "rocksdb", "app")
        reopened = open_task_stores(subtopology(StoreSpec("a")), 0, tmp_path, "rocksdb", "app")  # "a" was closed
        reopened.close()
    finally:
        held.close()
