"""SessionStore over a write cache on every backend: find_sessions bounds, merge, expiry by end."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.errors import StateStoreError
from streamer.state import SessionStore, StoreKind, WriteCache, open_layout

MINUTE = 60_000
RETENTION = 2 * MINUTE


@pytest.fixture
def cache(kind: StoreKind, tmp_path: Path) -> WriteCache:
    return WriteCache(open_layout(kind, tmp_path, "s", "session", RETENTION))


@pytest.fixture
def sessions(cache: WriteCache) -> SessionStore:
    return SessionStore(cache, RETENTION)


def test_find_sessions_returns_those_a_record_could_merge_with(sessions: SessionStore, cache: WriteCache) -> None:
    sessions.put(b"k", 0, 10, b"a")
    sessions.put(b"k", 20, 30, b"b")
    cache.apply(1)
    sessions.put(b"k", 40, 50, b"c")
    sessions.put(b"other", 20, 30, b"x")
    sessions.put(b"k\x00", 20, 30, b"longer key")
    # a record at 25 with a gap of 10 merges with sessions ending >= 15 and starting <= 35
    assert list(sessions.find_sessions(b"k", 15, 35)) == [(20, 30, b"b")]
    assert list(sessions.find_sessions(b"k", 10, 40)) == [(0, 10, b"a"), (20, 30, b"b"), (40, 50, b"c")]
    assert list(sessions.find_sessions(b"k", 0, 100, backward=True)) == [
        (40, 50, b"c"), (20, 30, b"b"), (0, 10, b"a")]
    assert list(sessions.fetch(b"k")) == [(0, 10, b"a"), (20, 30, b"b"), (40, 50, b"c")]
    assert sessions.fetch_session(b"k", 20, 30) == b"b"
    assert sessions.fetch_session(b"k", 20, 31) is None


def test_merging_removes_the_parts_and_puts_the_whole(sessions: SessionStore, cache: WriteCache) -> None:
    sessions.put(b"k", 0, 10, b"a")
    sessions.put(b"k", 20, 30, b"b")
    cache.apply(1)
    sessions.remove(b"k", 0, 10)
    sessions.remove(b"k", 20, 30)
    sessions.put(b"k", 0, 30, b"ab")
    assert list(sessions.fetch(b"k")) == [(0, 30, b"ab")]
    cache.apply(2)
    assert list(sessions.fetch_all()) == [(b"k", 0, 30, b"ab")]


def test_sessions_expire_by_their_end(sessions: SessionStore, cache: WriteCache) -> None:
    sessions.put(b"k", 0, MINUTE, b"old")
    sessions.put(b"j", 0, 3 * MINUTE + 1, b"new")  # observed 3m+1: live ends > 1m+1
    sessions.put(b"k", 0, 10, b"too late")
    assert sessions.observed_time == 3 * MINUTE + 1
    assert list(sessions.fetch(b"k")) == []
    assert sessions.fetch_session(b"k", 0, MINUTE) is None
    assert list(sessions.fetch_all()) == [(b"j", 0, 3 * MINUTE + 1, b"new")]
    cache.apply(1)
    assert list(sessions.fetch_all()) == [(b"j", 0, 3 * MINUTE + 1, b"new")]


def test_restore_and_bad_sessions(kind: StoreKind, tmp_path: Path, sessions: SessionStore, cache: WriteCache) -> None:
    sessions.put(b"k", 5, 9, b"a")
    target = WriteCache(open_layout(kind, tmp_path / "b", "s", "session", RETENTION))
    target.store.restore_batch(cache.dirty_entries(), 1)
    assert list(SessionStore(target, RETENTION).fetch(b"k")) == [(5, 9, b"a")]
    with pytest.raises(StateStoreError, match="start <= end"):
        sessions.put(b"k", 9, 5, b"x")
    with pytest.raises(StateStoreError, match="kind='session'"):
        SessionStore(WriteCache(open_layout(kind, tmp_path, "w", "window", RETENTION)), RETENTION)
