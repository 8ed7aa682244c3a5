"""State stores: local key-value storage, the per-task write cache and changelog bookkeeping.

This layer knows nothing of the runtime or of Kafka clients: the runtime produces and
reads the changelogs and tells the stores which offsets their contents reach.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from streamer.errors import StateStoreError
from streamer.state.memory_store import MemoryStore
from streamer.state.store import Entry, KeyValueStore, prefix_end
from streamer.state.write_cache import WriteCache

StoreKind = Literal["rocksdb", "memory"]

__all__ = [
    "Entry",
    "KeyValueStore",
    "MemoryStore",
    "StoreKind",
    "WriteCache",
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
