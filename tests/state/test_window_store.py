"""WindowStore over a write cache on every backend: bounds, expiry, segments, restore and duplicates."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from streamer.errors import StateStoreError
from streamer.state import StoreKind, WindowStore, WriteCache, open_layout
from streamer.state.segmented import SegmentedStore

MINUTE = 60_000
RETENTION = 2 * MINUTE  # segments of one minute


def window_cache(kind: StoreKind, tmp_path: Path, retention: int = RETENTION, duplicates: bool = False) -> WriteCache:
    return WriteCache(open_layout(kind, tmp_path, "w", "window", retention, duplicates))


@pytest.fixture
def cache(kind: StoreKind, tmp_path: Path) -> WriteCache:
    return window_cache(kind, tmp_path)


@pytest.fixture
def windows(cache: WriteCache) -> WindowStore:
    return WindowStore(cache, RETENTION)


def physical_keys(cache: WriteCache) -> list[bytes]:
    store = cache.store
    assert isinstance(store, SegmentedStore)
    return [key for key, _ in store.inner.range(b"\x01", b"\x02")]


def test_fetch_bounds_are_inclusive_and_backward_reverses(windows: WindowStore, cache: WriteCache) -> None:
    for start in (0, 10, 20, 30):
        windows.put(b"k", start, b"v%d" % start)
    cache.apply(1)
    windows.put(b"k", 40, b"v40")  # dirty, merged with the stored ones
    assert list(windows.fetch(b"k", 10, 40)) == [(10, b"v10"), (20, b"v20"), (30, b"v30"), (40, b"v40")]
    assert list(windows.fetch(b"k", 11, 29)) == [(20, b"v20")]
    assert list(windows.fetch(b"k", 0, 20, backward=True)) == [(20, b"v20"), (10, b"v10"), (0, b"v0")]
    assert list(windows.fetch(b"k", 30, 10)) == []
    assert windows.get(b"k", 20) == b"v20"
    assert windows.get(b"k", 21) is None


def test_fetch_skips_longer_keys_sharing_the_prefix(windows: WindowStore) -> None:
    windows.put(b"a", 5, b"a")
    windows.put(b"a\x00\x00\x00\x00\x00\x00\x00", 7, b"long")  # bytes right after b"a" look like a time
    windows.put(b"", 5, b"empty")
    assert list(windows.fetch(b"a", 0, 2**63 - 1)) == [(5, b"a")]
    assert list(windows.fetch(b"", 0, 100)) == [(5, b"empty")]


def test_windows_across_segments_come_in_start_order(windows: WindowStore, cache: WriteCache) -> None:
    starts = [10, MINUTE + 5, 2 * MINUTE - 1, 2 * MINUTE + 20]
    for start in starts:
        windows.put(b"k", start, b"x")
    cache.apply(1)
    assert [s for s, _ in windows.fetch(b"k", 0, 10 * MINUTE)] == starts[1:]  # 10 expired: <= 2m+20 - 2m
    assert [s for s, _ in windows.fetch(b"k", 0, 10 * MINUTE, backward=True)] == starts[1:][::-1]


def test_expired_windows_vanish_at_once_and_segments_drop_at_apply(windows: WindowStore, cache: WriteCache) -> None:
    windows.put(b"k", 0, b"old")
    windows.put(b"k", MINUTE, b"mid")
    cache.apply(1)
    windows.put(b"k", 3 * MINUTE, b"new")  # observed 3m: live from 1m + 1
    assert windows.observed_time == 3 * MINUTE
    assert windows.get(b"k", 0) is None
    assert windows.get(b"k", MINUTE) is None
    assert list(windows.fetch(b"k", 0, 10 * MINUTE)) == [(3 * MINUTE, b"new")]
    assert len(physical_keys(cache)) == 2  # nothing deleted before the commit applies
    cache.discard()  # the aborted transaction's observed time goes with it
    assert windows.observed_time == MINUTE
    assert list(windows.fetch(b"k", 0, 10 * MINUTE)) == [(0, b"old"), (MINUTE, b"mid")]
    windows.put(b"k", 3 * MINUTE, b"new")
    cache.apply(2)
    assert physical_keys(cache)[0][1:9] == (1).to_bytes(8, "big")  # segment 0 dropped, segment 1 is still live
    assert len(physical_keys(cache)) == 2


def test_a_put_of_an_expired_window_is_ignored(windows: WindowStore, cache: WriteCache) -> None:
    windows.put(b"k", 5 * MINUTE, b"x")
    windows.put(b"k", 3 * MINUTE, b"late")
    assert cache.dirty_count == 1
    with pytest.raises(StateStoreError, match="negative"):
        windows.put(b"k", -1, b"x")


def test_restore_lays_changelog_keys_into_segments(kind: StoreKind, tmp_path: Path) -> None:
    source = window_cache(kind, tmp_path / "a")
    writer = WindowStore(source, RETENTION)
    for start in (0, MINUTE, 2 * MINUTE, 5 * MINUTE):
        writer.put(b"k", start, b"%d" % start)
    changelog = source.dirty_entries()
    target = window_cache(kind, tmp_path / "b")
    target.store.restore_batch(changelog[:2], 2)
    target.store.restore_batch(changelog[2:], 4)
    restored = WindowStore(target, RETENTION)
    assert restored.observed_time == 5 * MINUTE
    assert list(restored.fetch(b"k", 0, 10 * MINUTE)) == [(5 * MINUTE, b"%d" % (5 * MINUTE))]
    assert len(physical_keys(target)) == 1  # the expired ones were dropped or never written
    assert target.store.changelog_offset() == 4


def test_fetch_all_and_all_order_by_key_then_start(windows: WindowStore, cache: WriteCache) -> None:
    windows.put(b"b", 10, b"b10")
    windows.put(b"a", 70_000, b"a70")
    cache.apply(1)
    windows.put(b"a", 10, b"a10")
    windows.put(b"c", 50, b"c50")
    windows.put(b"b", 10, None)
    assert list(windows.all()) == [(b"a", 10, b"a10"), (b"a", 70_000, b"a70"), (b"c", 50, b"c50")]
    assert list(windows.fetch_all(20, 60)) == [(b"c", 50, b"c50")]
    assert list(windows.fetch_all(0, 100_000, backward=True)) == [
        (b"c", 50, b"c50"), (b"a", 70_000, b"a70"), (b"a", 10, b"a10")]


def test_duplicates_keep_every_put_in_order(kind: StoreKind, tmp_path: Path) -> None:
    cache = window_cache(kind, tmp_path, duplicates=True)
    windows = WindowStore(cache, RETENTION, retain_duplicates=True)
    windows.put(b"k", 10, b"first")
    windows.put(b"k", 10, b"second")
    windows.put(b"k", 10, None)  # no-op with duplicates
    cache.apply(1)
    windows.put(b"k", 10, b"third")
    windows.put(b"k", 11, b"other")
    assert list(windows.fetch(b"k", 10, 10)) == [(10, b"first"), (10, b"second"), (10, b"third")]
    assert [key for key, _, _ in windows.all()] == [b"k"] * 4
    with pytest.raises(StateStoreError, match="duplicates"):
        windows.get(b"k", 10)


def test_the_store_must_be_laid_out_as_declared(kind: StoreKind, tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="kind='window'"):
        WindowStore(WriteCache(open_layout(kind, tmp_path, "kv")), RETENTION)
    with pytest.raises(StateStoreError, match="retain_duplicates=True"):
        WindowStore(window_cache(kind, tmp_path), RETENTION, retain_duplicates=True)
    with pytest.raises(StateStoreError, match="retention_ms=120000"):
        WindowStore(window_cache(kind, tmp_path / "x"), 5)


def test_observed_time_and_windows_survive_a_reopen(tmp_path: Path) -> None:
    cache = window_cache("rocksdb", tmp_path)
    WindowStore(cache, RETENTION).put(b"k", 4 * MINUTE, b"x")
    cache.apply(3)
    cache.store.close()
    reopened = WindowStore(window_cache("rocksdb", tmp_path), RETENTION)
    assert reopened.observed_time == 4 * MINUTE
    assert reopened.get(b"k", 4 * MINUTE) == b"x"


def test_a_changed_retention_lays_the_store_out_again(tmp_path: Path) -> None:
    cache = window_cache("rocksdb", tmp_path)
    windows = WindowStore(cache, RETENTION)
    starts = [0, 30_000, MINUTE, 90_000, 2 * MINUTE]
    for start in starts:
        windows.put(b"k", start, b"%d" % start)
    cache.apply(5)
    cache.store.close()
    longer = 10 * MINUTE  # segments of five minutes instead of one
    reopened_cache = window_cache("rocksdb", tmp_path, retention=longer)
    reopened = WindowStore(reopened_cache, longer)
    # 0 had expired but its segment was still there: with the longer retention it is live again
    assert [s for s, _ in reopened.fetch(b"k", 0, 10 * MINUTE)] == starts
    assert {key[1:9] for key in physical_keys(reopened_cache)} == {(0).to_bytes(8, "big")}
    assert reopened_cache.store.changelog_offset() == 5


def test_matches_a_model_under_random_operations(kind: StoreKind, tmp_path: Path) -> None:
    """Random puts, deletes, fetches, applies and discards agree with a dict and Kafka Streams' expiry rule."""
    rng = random.Random(11)
    cache = window_cache(kind, tmp_path)
    windows = WindowStore(cache, RETENTION)
    keys = [b"", b"a", b"a\x00", b"b", b"ab"]
    committed: dict[tuple[bytes, int], bytes] = {}
    visible: dict[tuple[bytes, int], bytes] = {}
    committed_observed = observed = -1
    clock = 0
    for step in range(2500):
        roll = rng.random()
        if roll < 0.5:
            clock += rng.randrange(0, 4000)
            key, start = rng.choice(keys), max(0, clock - rng.randrange(0, 3 * MINUTE))
            value = None if rng.random() < 0.2 else b"%d" % step
            windows.put(key, start, value)
            observed = max(observed, start)
            if start > observed - RETENTION:
                if value is None:
                    visible.pop((key, start), None)
                else:
                    visible[(key, start)] = value
        elif roll < 0.85:
            key = rng.choice(keys)
            low, high = sorted(rng.randrange(0, clock + 1) for _ in range(2))
            backward = rng.random() < 0.5
            live = observed - RETENTION
            expected = sorted((s, v) for (k, s), v in visible.items() if k == key and low <= s <= high and s > live)
            if backward:
                expected.reverse()
            assert list(windows.fetch(key, low, high, backward)) == expected
            assert sorted(windows.all()) == sorted((k, s, v) for (k, s), v in visible.items() if s > live)
        elif roll < 0.95:
            cache.apply(step)
            committed, committed_observed = dict(visible), observed
        else:
            cache.discard()
            visible, observed = dict(committed), committed_observed
        assert windows.observed_time == observed
