"""WriteCache semantics over every store kind: overlay reads, merged scans, apply and discard."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import pytest

from streamer.errors import StateStoreError
from streamer.state import KeyValueStore, WriteCache, open_store


def keys_of(items: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    return [key for key, _ in items]


@pytest.fixture
def cache(store: KeyValueStore) -> WriteCache:
    store.write_batch([(b"a", b"A"), (b"c", b"C"), (b"e", b"E"), (b"g", b"G")], 4)
    return WriteCache(store)


def test_reads_see_dirty_entries_before_the_store(cache: WriteCache) -> None:
    cache.put(b"a", b"A2")
    cache.put(b"b", b"B")
    assert cache.get(b"a") == b"A2"
    assert cache.get(b"b") == b"B"
    assert cache.get(b"c") == b"C"
    assert cache.get(b"zz") is None
    assert cache.store.get(b"a") == b"A"
    assert cache.store.get(b"b") is None


def test_pending_delete_hides_the_stored_value(cache: WriteCache) -> None:
    cache.delete(b"c")
    assert cache.get(b"c") is None
    assert cache.store.get(b"c") == b"C"
    cache.put(b"c", b"back")
    assert cache.get(b"c") == b"back"


def test_range_merges_in_byte_order(cache: WriteCache) -> None:
    cache.put(b"b", b"B")  # new key between stored ones
    cache.put(b"e", b"E2")  # overrides a stored key
    cache.delete(b"c")  # hides a stored key
    cache.delete(b"d")  # deleting a key that never existed shows nothing
    cache.put(b"h", b"H")  # after the last stored key
    cache.put(b"0", b"zero")  # before the first
    expected = [(b"0", b"zero"), (b"a", b"A"), (b"b", b"B"), (b"e", b"E2"), (b"g", b"G"), (b"h", b"H")]
    assert list(cache.range(None, None)) == expected
    assert list(cache.range(None, None, reverse=True)) == expected[::-1]
    assert list(cache.range(b"b", b"g")) == expected[2:4]
    assert list(cache.range(b"b", b"g", reverse=True)) == expected[2:4][::-1]
    assert list(cache.range(b"c", b"e")) == []
    assert list(cache.range(b"h", None)) == [(b"h", b"H")]
    assert list(cache.range(None, b"a")) == [(b"0", b"zero")]


def test_range_with_dirty_keys_only_outside_the_bounds(cache: WriteCache) -> None:
    cache.put(b"z", b"Z")
    assert keys_of(cache.range(b"b", b"f")) == [b"c", b"e"]
    assert keys_of(cache.range(b"b", b"f", reverse=True)) == [b"e", b"c"]


def test_prefix_merges_dirty_entries(store: KeyValueStore) -> None:
    store.write_batch([(b"user:1", b"a"), (b"user:3", b"c"), (b"users", b"x")], 1)
    cache = WriteCache(store)
    cache.put(b"user:2", b"b")
    cache.delete(b"user:3")
    cache.put(b"user\xff", b"y")
    assert keys_of(cache.prefix(b"user:")) == [b"user:1", b"user:2"]
    assert keys_of(cache.prefix(b"user:", reverse=True)) == [b"user:2", b"user:1"]
    assert keys_of(cache.prefix(b"user")) == [b"user:1", b"user:2", b"users", b"user\xff"]


def test_keys_written_after_a_scan_show_in_the_next_scan(cache: WriteCache) -> None:
    cache.put(b"b", b"B")
    assert keys_of(cache.range(None, None)) == [b"a", b"b", b"c", b"e", b"g"]
    cache.put(b"f", b"F")
    cache.put(b"0", b"0")
    cache.delete(b"a")
    assert keys_of(cache.range(None, None)) == [b"0", b"b", b"c", b"e", b"f", b"g"]


def test_scan_reflects_the_moment_it_started(cache: WriteCache) -> None:
    cache.put(b"b", b"B")
    scan = cache.range(None, None)
    cache.put(b"d", b"D")
    cache.delete(b"b")
    cache.put(b"e", b"E2")
    assert list(scan) == [(b"a", b"A"), (b"b", b"B"), (b"c", b"C"), (b"e", b"E"), (b"g", b"G")]


def test_dirty_entries_hold_the_latest_value_per_key(cache: WriteCache) -> None:
    cache.put(b"k", b"1")
    cache.put(b"k", b"2")
    cache.put(b"a", b"A2")
    cache.delete(b"a")
    cache.delete(b"c")
    assert dict(cache.dirty_entries()) == {b"k": b"2", b"a": None, b"c": None}
    assert cache.dirty_count == 3


def test_apply_writes_entries_and_offset_then_clears(cache: WriteCache) -> None:
    cache.put(b"b", b"B")
    cache.delete(b"a")
    cache.apply(9)
    assert cache.dirty_count == 0
    assert cache.dirty_entries() == []
    assert dict(cache.store.range(None, None)) == {b"b": b"B", b"c": b"C", b"e": b"E", b"g": b"G"}
    assert cache.store.changelog_offset() == 9
    assert keys_of(cache.range(None, None)) == [b"b", b"c", b"e", b"g"]


def test_apply_without_offset_keeps_the_recorded_one(cache: WriteCache) -> None:
    cache.put(b"x", b"X")
    cache.apply(None)
    assert cache.store.get(b"x") == b"X"
    assert cache.store.changelog_offset() == 4


def test_discard_forgets_dirty_entries(cache: WriteCache) -> None:
    cache.put(b"b", b"B")
    cache.delete(b"a")
    assert keys_of(cache.range(None, None)) == [b"b", b"c", b"e", b"g"]
    cache.discard()
    assert cache.dirty_count == 0
    assert cache.get(b"a") == b"A"
    assert cache.get(b"b") is None
    assert keys_of(cache.range(None, None)) == [b"a", b"c", b"e", b"g"]
    assert cache.store.changelog_offset() == 4


def test_failed_apply_keeps_entries_dirty(tmp_path: Path) -> None:
    store = open_store("rocksdb", tmp_path, "s")
    cache = WriteCache(store)
    cache.put(b"k", b"v")
    store.close()
    with pytest.raises(StateStoreError):
        cache.apply(1)
    assert cache.dirty_entries() == [(b"k", b"v")]


def test_matches_a_dict_model_under_random_operations(store: KeyValueStore) -> None:
    """Random writes, scans, applies and discards agree with a plain dict of committed + dirty state."""
    rng = random.Random(7)
    alphabet = [bytes([b]) for b in (0, 1, 97, 98, 254, 255)]
    cache = WriteCache(store)
    committed: dict[bytes, bytes] = {}
    visible: dict[bytes, bytes] = {}
    offset = 0
    recorded: int | None = None
    for step in range(3000):
        key = b"".join(rng.choices(alphabet, k=rng.randint(0, 3)))
        roll = rng.random()
        if roll < 0.45:
            value = b"%d" % step
            cache.put(key, value)
            visible[key] = value
        elif roll < 0.65:
            cache.delete(key)
            visible.pop(key, None)
        elif roll < 0.9:
            start = key if rng.random() < 0.8 else None
            end = b"".join(rng.choices(alphabet, k=rng.randint(0, 3))) if rng.random() < 0.8 else None
            reverse = rng.random() < 0.5
            expected = sorted(
                (k, v) for k, v in visible.items() if (start is None or k >= start) and (end is None or k < end)
            )
            if reverse:
                expected.reverse()
            assert list(cache.range(start, end, reverse)) == expected, (start, end, reverse)
            assert cache.get(key) == visible.get(key)
        elif roll < 0.97:
            offset += cache.dirty_count
            cache.apply(offset)
            recorded = offset
            committed = dict(visible)
        else:
            cache.discard()
            visible = dict(committed)
    assert dict(store.range(None, None)) == committed
    assert store.changelog_offset() == recorded


def test_dirty_bytes_bound_what_the_cache_holds_and_reset_at_apply_and_discard(cache: WriteCache) -> None:
    cache.put(b"k1", b"x" * 100)
    cache.put(b"k1", b"y" * 50)  # an overwrite counts again: a bound, cheap to keep
    cache.delete(b"k2")
    cache.delete_many([b"k3", b"k44"])
    assert cache.dirty_bytes == (2 + 100) + (2 + 50) + 2 + 2 + 3
    cache.apply(9)
    assert cache.dirty_bytes == 0
    cache.put(b"k", b"v")
    cache.discard()
    assert cache.dirty_bytes == 0
