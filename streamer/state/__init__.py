"""State stores: local key-value storage, the per-task write cache and changelog bookkeeping.

This layer knows nothing of the runtime or of Kafka clients: the runtime produces and
reads the changelogs and tells the stores which offsets their contents reach.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from streamer.errors import StateStoreError
from streamer.state.memory_store import MemoryStore
from streamer.state.segmented import SegmentedStore
from streamer.state.session_store import SessionStore, session_segments
from streamer.state.store import Entry, KeyValueStore, prefix_end
from streamer.state.time_ordered_buffer import TimeOrderedBuffer
from streamer.state.window_store import WindowStore, window_segments
from streamer.state.write_cache import WriteCache

StoreKind = Literal["rocksdb", "memory"]

__all__ = [
    "Entry",
    "KeyValueStore",
    "MemoryStore",
    "SegmentedStore",
    "SessionStore",
    "StoreKind",
    "TimeOrderedBuffer",
    "WindowStore",
    "WriteCache",
    "open_layout",
    "open_store",
    "prefix_end",
]


def open_store(kind: StoreKind, directory: Path, name: str) -> KeyValueStore:
    """Open (or create) store ``name`` of a task whose state lives in ``directory``.

    A RocksDB store keeps its files in ``directory / name``; a memory store ignores
    ``directory`` and starts empty every time.
    """
    if kind == "rocksdb":
        from streamer.state.rocksdb_store import RocksDBStore  # imports the native library on first use

        return RocksDBStore(directory, name)
    if kind == "memory":
        return MemoryStore(name)
    raise StateStoreError(f"unknown store kind {kind!r}: use 'rocksdb' or 'memory'")


def open_layout(backend: StoreKind, directory: Path, name: str, kind: str = "key_value",
                retention_ms: int | None = None, retain_duplicates: bool = False) -> KeyValueStore:
    """Open store ``name`` laid out for ``kind``: the store under a task's write cache.

    Key-value stores and time-ordered buffers are plain; window and session stores are
    segmented by time with ``retention_ms``, so the restorer's raw changelog keys land
    in the right segments too.
    """
    if kind in ("key_value", "buffer"):
        return open_store(backend, directory, name)
    if kind not in ("window", "session"):
        raise StateStoreError(f"store {name}: unknown kind {kind!r}; kinds are key_value, window, session, buffer")
    if retention_ms is None:
        raise StateStoreError(f"{kind} store {name} needs a retention_ms")
    store = open_store(backend, directory, name)
    if kind == "window":
        return window_segments(store, retention_ms, retain_duplicates)
    return session_segments(store, retention_ms)
