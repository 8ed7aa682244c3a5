"""TimeOrderedBuffer: eviction in time order, its bookkeeping across apply and discard."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.state import StoreKind, TimeOrderedBuffer, WriteCache, open_layout


@pytest.fixture
def cache(kind: StoreKind, tmp_path: Path) -> WriteCache:
    return WriteCache(open_layout(kind, tmp_path, "b", "buffer"))


def test_evict_returns_due_entries_oldest_first_and_removes_them(cache: WriteCache) -> None:
    buffer = TimeOrderedBuffer(cache)
    assert buffer.min_time() is None
    buffer.put(30, b"c", b"3")
    buffer.put(10, b"b", b"1")
    buffer.put(10, b"a", b"1a")
    cache.apply(1)
    buffer.put(20, b"x", b"2")
    assert buffer.min_time() == 10
    assert buffer.evict(5) == []
    assert buffer.evict(20) == [(10, b"a", b"1a"), (10, b"b", b"1"), (20, b"x", b"2")]
    assert buffer.evict(20) == []
    assert buffer.min_time() == 30
    buffer.put(15, b"late", b"l")  # below what was evicted already
    assert buffer.min_time() == 15
    buffer.delete(15, b"late")
    assert buffer.min_time() == 30
    cache.apply(2)
    assert buffer.evict(2**63 - 1) == [(30, b"c", b"3")]
    assert buffer.min_time() is None


def test_a_discard_brings_back_what_an_aborted_eviction_took(cache: WriteCache) -> None:
    buffer = TimeOrderedBuffer(cache)
    buffer.put(10, b"a", b"1")
    buffer.put(20, b"b", b"2")
    cache.apply(1)
    assert buffer.evict(15) == [(10, b"a", b"1")]
    cache.discard()
    assert buffer.min_time() == 10
    assert buffer.evict(25) == [(10, b"a", b"1"), (20, b"b", b"2")]


def test_a_new_buffer_over_a_restored_store_sees_its_entries(kind: StoreKind, tmp_path: Path) -> None:
    cache = WriteCache(open_layout(kind, tmp_path, "b", "buffer"))
    cache.store.restore_batch([((7).to_bytes(8, "big") + b"k", b"v")], 1)
    assert TimeOrderedBuffer(cache).evict(7) == [(7, b"k", b"v")]
