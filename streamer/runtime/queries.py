"""Reading a running worker's stores: the local read API (Kafka Streams' interactive queries)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from streamer.state.typed_store import TypedStore


class LocalStoreView:
    """One store across the tasks this worker runs now; each key lives in exactly one task.

    Reads see the tasks' write caches, so they include changes not yet committed (under
    exactly-once such changes can still be rolled back). Keys of partitions other workers
    own are not here: route such queries to the worker that owns the key's partition.
    Values are plain values; ``get_with_timestamp`` adds the timestamp that aggregates and
    tables keep per value.
    """

    def __init__(self, name: str, stores: Iterable[TypedStore]) -> None:
        self.name = name
        self._stores = list(stores)

    def get(self, key: Any, default: Any = None) -> Any:
        for store in self._stores:
            if key in store:
                return store.get(key)
        return default

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        """``(value, timestamp)`` of ``key`` in a timestamped store, or None if no task has it."""
        for store in self._stores:
            if key in store:
                return store.get_with_timestamp(key)
        return None

    def items(self) -> Iterator[tuple[Any, Any]]:
        for store in self._stores:
            yield from store.range()

    def all(self) -> dict[Any, Any]:
        return dict(self.items())

    def __contains__(self, key: Any) -> bool:
        return any(key in store for store in self._stores)
