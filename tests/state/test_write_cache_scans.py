"""WriteCache with many dirty keys and scans in between: the chunked key order stays right."""

from __future__ import annotations

import random

import pytest

from streamer.state import KeyValueStore, WriteCache
from streamer.state import write_cache


@pytest.mark.parametrize("chunk", [2, 5, 1024])
def test_interleaved_new_keys_and_scans_match_a_model(store: KeyValueStore, chunk: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write_cache, "_CHUNK", chunk)
    rng = random.Random(chunk)
    store.write_batch([(b"%05d" % i, b"stored") for i in range(0, 3000, 7)], 1)
    cache = WriteCache(store)
    visible = {b"%05d" % i: b"stored" for i in range(0, 3000, 7)}
    for step in range(4000):
        key = b"%05d" % rng.randrange(3000)
        if rng.random() < 0.8:
            cache.put(key, b"%d" % step)
            visible[key] = b"%d" % step
        else:
            cache.delete(key)
            visible.pop(key, None)
        if rng.random() < 0.3 or step < 20:
            low = b"%05d" % rng.randrange(3000)
            high = b"%05d" % rng.randrange(3000)
            reverse = rng.random() < 0.5
            expected = sorted((k, v) for k, v in visible.items() if low <= k < high)
            if reverse:
                expected.reverse()
            assert list(cache.range(low, high, reverse)) == expected
    assert list(cache.range(None, None)) == sorted(visible.items())


def test_a_burst_of_new_keys_after_a_scan_is_sorted_at_once(store: KeyValueStore) -> None:
    cache = WriteCache(store)
    cache.put(b"m", b"1")
    assert list(cache.range(None, None)) == [(b"m", b"1")]
    for i in range(100, 0, -1):
        cache.put(b"k%03d" % i, b"v")
    assert [k for k, _ in cache.range(b"k", b"l")] == [b"k%03d" % i for i in range(1, 101)]


def test_discard_bumps_the_discard_count_and_apply_does_not(store: KeyValueStore) -> None:
    cache = WriteCache(store)
    cache.put(b"a", b"1")
    cache.apply(1)
    assert cache.discards == 0
    cache.put(b"b", b"2")
    cache.discard()
    assert cache.discards == 1
    assert cache.get(b"b") is None
