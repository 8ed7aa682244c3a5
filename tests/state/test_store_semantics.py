"""The KeyValueStore contract, checked against every store kind."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from streamer.errors import StateStoreError
from streamer.state import KeyValueStore, StoreKind, open_store, prefix_end

KEYS = [b"", b"\x00", b"a", b"a\x00", b"ab", b"abc", b"a\xff", b"b", b"\xff", b"\xff\xff"]  # unsigned byte order


def fill(store: KeyValueStore, keys: list[bytes] = KEYS) -> None:
    for key in keys:
        store.put(key, b"v" + key)


def keys_of(items: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    return [key for key, _ in items]


def test_get_put_delete(store: KeyValueStore) -> None:
    assert store.get(b"k") is None
    store.put(b"k", b"1")
    assert store.get(b"k") == b"1"
    store.put(b"k", b"2")
    assert store.get(b"k") == b"2"
    store.delete(b"k")
    assert store.get(b"k") is None
    store.delete(b"never-there")
    store.put(b"", b"")
    assert store.get(b"") == b""


def test_full_scan_is_in_unsigned_byte_order(store: KeyValueStore) -> None:
    fill(store, list(reversed(KEYS)))
    assert keys_of(store.range(None, None)) == KEYS
    assert keys_of(store.range(None, None, reverse=True)) == KEYS[::-1]
    assert dict(store.range(None, None)) == {key: b"v" + key for key in KEYS}


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (b"a", b"b"),
        (b"a\x00", b"abc"),
        (b"aa", b"ac"),  # bounds that are not keys
        (b"", b"\x00"),
        (None, b"a"),
        (b"ab", None),
        (b"\xff", None),
        (b"b", b"b"),  # empty: end is exclusive
        (b"c", b"a"),  # empty: start after end
        (b"zz", None),
        (None, b""),
    ],
)
def test_range_bounds(store: KeyValueStore, start: bytes | None, end: bytes | None) -> None:
    fill(store)
    expected = [k for k in KEYS if (start is None or k >= start) and (end is None or k < end)]
    assert keys_of(store.range(start, end)) == expected
    assert keys_of(store.range(start, end, reverse=True)) == expected[::-1]


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"a\xff", b"\xff", b"b", b"c"])
def test_prefix(store: KeyValueStore, prefix: bytes) -> None:
    fill(store)
    expected = [k for k in KEYS if k.startswith(prefix)]
    assert keys_of(store.prefix(prefix)) == expected
    assert keys_of(store.prefix(prefix, reverse=True)) == expected[::-1]


def test_prefix_end() -> None:
    assert prefix_end(b"ab") == b"ac"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\x00") == b"\x01"
    assert prefix_end(b"\xff\xff") is None
    assert prefix_end(b"") is None


def test_scan_reflects_the_moment_it_started(store: KeyValueStore) -> None:
    fill(store, [b"a", b"b", b"c"])
    scan = store.range(None, None)
    store.put(b"bb", b"new")
    store.delete(b"c")
    assert keys_of(scan) == [b"a", b"b", b"c"]


def test_write_batch_applies_in_order_and_records_offset(store: KeyValueStore) -> None:
    assert store.changelog_offset() is None
    store.put(b"gone", b"x")
    store.write_batch([(b"k", b"1"), (b"k", b"2"), (b"gone", None), (b"d", b"3"), (b"d", None)], 42)
    assert dict(store.range(None, None)) == {b"k": b"2"}
    assert store.changelog_offset() == 42
    store.write_batch([(b"m", b"4")], None)
    assert store.changelog_offset() == 42
    assert store.get(b"m") == b"4"
    store.write_batch([], 43)
    assert store.changelog_offset() == 43


def test_restore_batch_moves_the_offset(store: KeyValueStore) -> None:
    store.restore_batch([(b"a", b"1"), (b"b", b"2")], 2)
    store.restore_batch([(b"a", None), (b"c", b"3")], 4)
    assert dict(store.range(None, None)) == {b"b": b"2", b"c": b"3"}
    assert store.changelog_offset() == 4


def test_bookkeeping_stays_out_of_scans_and_counts(store: KeyValueStore) -> None:
    store.write_batch([(b"a", b"1"), (b"b", b"2")], 7)
    store.flush()
    assert keys_of(store.range(None, None)) == [b"a", b"b"]
    assert keys_of(store.range(None, None, reverse=True)) == [b"b", b"a"]
    assert keys_of(store.prefix(b"")) == [b"a", b"b"]
    assert store.get(b"changelog_offset") is None
    assert store.approximate_count() == 2


def test_approximate_count_of_distinct_puts(store: KeyValueStore) -> None:
    assert store.approximate_count() == 0
    store.write_batch([(b"%05d" % i, b"x") for i in range(1000)], 1000)
    assert store.approximate_count() == 1000


def test_wipe_empties_data_and_bookkeeping(store: KeyValueStore) -> None:
    store.write_batch([(b"a", b"1")], 5)
    store.wipe()
    assert store.changelog_offset() is None
    assert list(store.range(None, None)) == []
    store.restore_batch([(b"b", b"2")], 1)
    assert dict(store.range(None, None)) == {b"b": b"2"}
    assert store.changelog_offset() == 1


def test_close_twice_is_harmless(store: KeyValueStore) -> None:
    store.close()
    store.close()


def test_reopen_after_close_keeps_data_and_offset(tmp_path: Path) -> None:
    store = open_store("rocksdb", tmp_path, "s")
    store.write_batch([(b"a", b"1"), (b"b", b"2")], 10)
    store.write_batch([(b"a", None)], 11)
    store.close()
    reopened = open_store("rocksdb", tmp_path, "s")
    assert dict(reopened.range(None, None)) == {b"b": b"2"}
    assert reopened.changelog_offset() == 11
    reopened.close()


def test_memory_store_restores_from_scratch_after_restart(tmp_path: Path) -> None:
    store = open_store("memory", tmp_path, "s")
    store.write_batch([(b"a", b"1")], 10)
    store.close()
    reopened = open_store("memory", tmp_path, "s")
    assert reopened.changelog_offset() is None
    assert reopened.get(b"a") is None


def test_destroy_removes_the_files(tmp_path: Path) -> None:
    store = open_store("rocksdb", tmp_path, "s")
    store.write_batch([(b"a", b"1")], 1)
    store.destroy()
    assert not (tmp_path / "s").exists()
    fresh = open_store("rocksdb", tmp_path, "s")
    assert fresh.changelog_offset() is None
    assert fresh.get(b"a") is None
    fresh.close()


def test_store_in_use_cannot_be_opened_twice(tmp_path: Path) -> None:
    store = open_store("rocksdb", tmp_path, "s")
    with pytest.raises(StateStoreError, match="cannot open"):
        open_store("rocksdb", tmp_path, "s")
    store.close()


def test_closed_store_raises_state_store_error(tmp_path: Path) -> None:
    store = open_store("rocksdb", tmp_path, "s")
    store.close()
    with pytest.raises(StateStoreError, match="closed"):
        store.get(b"a")
    with pytest.raises(StateStoreError, match="closed"):
        store.write_batch([(b"a", b"1")], 1)
    with pytest.raises(StateStoreError, match="closed"):
        store.range(None, None)


def test_unknown_kind_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="unknown store kind"):
        open_store("lmdb", tmp_path, "s")  # type: ignore[arg-type]


def test_scans_merge_memtable_and_disk(tmp_path: Path) -> None:
    """Ranges and deletes stay correct when a key's versions sit in different RocksDB levels."""
    store = open_store("rocksdb", tmp_path, "s")
    store.write_batch([(b"%04d" % i, b"old") for i in range(0, 1000)], 1000)
    store.flush()
    store.write_batch([(b"%04d" % i, None) for i in range(0, 1000, 2)], 1500)
    store.write_batch([(b"%04d" % i, b"new") for i in range(0, 1000, 3)], 1834)
    expected = {b"%04d" % i: (b"new" if i % 3 == 0 else b"old") for i in range(1000) if i % 2 or i % 3 == 0}
    assert dict(store.range(None, None)) == expected
    window = [k for k in sorted(expected) if b"0100" <= k < b"0200"]
    assert keys_of(store.range(b"0100", b"0200")) == window
    assert keys_of(store.range(b"0100", b"0200", reverse=True)) == window[::-1]
    store.close()


def test_factory_names_the_store(kind: StoreKind, tmp_path: Path) -> None:
    store = open_store(kind, tmp_path, "named")
    assert store.name == "named"
    store.close()


def test_wipe_refuses_while_an_iterator_holds_rocksdb_open(tmp_path: Path) -> None:
    store = open_store("rocksdb", tmp_path, "s")
    store.write_batch([(b"a", b"1"), (b"b", b"2")], 2)
    scan = store.range(None, None)
    with pytest.raises(StateStoreError, match="iterator"):
        store.wipe()
    assert list(scan) == [(b"a", b"1"), (b"b", b"2")]
    del scan
    reopened = open_store("rocksdb", tmp_path, "s")
    assert reopened.changelog_offset() == 2
    reopened.close()
