"""A read-only look into a task's store, so tests assert on values, not bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamer.state.typed_store import TypedStore


class StoreView:
    """The read half of ``TypedStore``: writing from a test would bypass the topology's own logic."""

    def __init__(self, store: TypedStore) -> None:
        self._store = store

    @property
    def name(self) -> str:
        return self._store.name

    def get(self, key: Any, default: Any = None) -> Any:
        """The value stored for ``key``, or ``default`` if there is none."""
        return self._store.get(key, default)

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        """``(value, timestamp)`` in a timestamped store (aggregates, tables), or None if ``key`` has none."""
        return self._store.get_with_timestamp(key)

    def range(self, start: Any = None, end: Any = None, reverse: bool = False) -> Iterator[tuple[Any, Any]]:
        """Entries with ``start <= key < end`` (None: unbounded), in the order of the serialized keys."""
        return self._store.range(start, end, reverse)

    def all(self) -> dict[Any, Any]:
        """Every entry, in the order of the serialized keys."""
        return self._store.all()

    def __contains__(self, key: Any) -> bool:
        return key in self._store

    def __len__(self) -> int:
        return sum(1 for _ in self._store.range())

    def __repr__(self) -> str:
        return f"StoreView({self.name!r}, {self.all()!r})"
