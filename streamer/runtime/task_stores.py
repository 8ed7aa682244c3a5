"""A task's state stores, each behind a write cache and backed by a changelog partition.

Between commits, writes stay in the caches. At commit the dirty entries are produced
to the changelogs; only once the commit succeeded are they applied to the stores,
together with the changelog offset they reach, so a store never holds uncommitted data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from streamer.errors import StateStoreError
from streamer.state import StoreKind, WriteCache, open_layout
from streamer.topology.topology import SubTopology


def open_task_stores(subtopology: SubTopology, partition: int, directory: Path, backend: StoreKind,
                     application_id: str) -> TaskStores:
    """Open every store of one task, laid out for its kind, each behind a write cache.

    The one place stores are opened, for the worker and the test driver alike, so both
    run the same layouts (a window store is segmented in either).
    """
    caches: dict[str, WriteCache] = {}
    try:
        for spec in subtopology.stores:
            store = open_layout(backend, directory, spec.name, spec.kind, spec.retention_ms, spec.retain_duplicates)
            caches[spec.name] = WriteCache(store)
    except Exception as error:
        for cache in caches.values():
            cache.store.close()
        kind = type(error) if isinstance(error, StateStoreError) else StateStoreError  # a lock stays a lock
        raise kind(f"cannot open store {spec.name} in {directory}: {error}") from error
    changelogs = {spec.name: spec.changelog_topic(application_id) for spec in subtopology.stores if spec.logged}
    return TaskStores(partition, caches, changelogs)


class _Collector(Protocol):
    def send(self, topic: str, keys: list[Any], values: list[Any], timestamps: list[int], headers: list[Any],
             partitions: list[int] | None = None) -> None: ...


class TaskStores:
    """Name -> write cache for one task, plus the changelog topic of each logged store."""

    def __init__(self, partition: int, caches: dict[str, WriteCache], changelogs: dict[str, str]) -> None:
        self.partition = partition
        self.caches = caches
        self.changelogs = changelogs
        self._written: dict[str, int] = {}

    def __getitem__(self, name: str) -> WriteCache:
        return self.caches[name]

    @property
    def dirty_count(self) -> int:
        return sum(cache.dirty_count for cache in self.caches.values())

    @property
    def dirty_bytes(self) -> int:
        return sum(cache.dirty_bytes for cache in self.caches.values())

    def produce_changelogs(self, collector: _Collector, timestamp: int) -> None:
        partition = self.partition
        stamp = max(timestamp, 0)
        for name, topic in self.changelogs.items():
            entries = self.caches[name].dirty_entries()
            if entries:
                count = len(entries)
                keys = [key for key, _ in entries]
                values = [value for _, value in entries]
                collector.send(topic, keys, values, [stamp] * count, [None] * count, [partition] * count)

    def note_written(self, written: dict[tuple[str, int], int]) -> None:
        """Remember the last changelog offset each store's changes reached."""
        for name, topic in self.changelogs.items():
            offset = written.get((topic, self.partition))
            if offset is not None:
                self._written[name] = offset

    def apply(self) -> None:
        for name, cache in self.caches.items():
            written = self._written.pop(name, None)
            if cache.dirty_count:
                cache.apply(None if written is None else written + 1)

    def discard(self) -> None:
        self._written.clear()
        for cache in self.caches.values():
            cache.discard()

    def flush(self) -> None:
        """Make what the stores hold survive a kill -9 (before a checkpoint says so)."""
        for cache in self.caches.values():
            cache.store.flush()

    def close(self) -> None:
        for cache in self.caches.values():
            cache.store.close()
