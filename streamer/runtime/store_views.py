"""Read-only looks into one task's store, by store kind: values, not bytes.

The test driver hands these to tests; the worker's local read API spans them over its tasks.
A view over a task's write cache sees the writes not yet committed too; one over
``committed_reads(cache)`` sees only what the last commit applied to the store (what the
query server answers with: under exactly-once an uncommitted write may still be rolled back).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamer.errors import StateStoreError
from streamer.serde import Serde
from streamer.state import timestamped
from streamer.state.session_store import SessionStore
from streamer.state.typed_store import TypedStore
from streamer.state.window_store import WindowStore
from streamer.state.write_cache import WriteCache
from streamer.topology.topology import StoreSpec
from streamer.windows.windowed import Windowed


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

    def prefix(self, prefix: bytes) -> Iterator[tuple[Any, Any]]:
        """Entries whose serialized key starts with ``prefix``, in the order of the serialized keys."""
        store = self._store
        load_key, load_value = store.key_serde.deserialize, store.value_serde.deserialize
        for key, data in store.cache.prefix(prefix):
            yield load_key(key), load_value(timestamped.decode(data)[1] if store.timestamped else data)

    def all(self) -> dict[Any, Any]:
        """Every entry, in the order of the serialized keys."""
        return self._store.all()

    def __contains__(self, key: Any) -> bool:
        return key in self._store

    def __len__(self) -> int:
        return sum(1 for _ in self._store.range())

    def __repr__(self) -> str:
        return f"StoreView({self.name!r}, {self.all()!r})"


def _key_bytes(serde: Serde, key: Any) -> bytes:
    data = serde.serialize(key)
    if not isinstance(data, bytes):
        raise StateStoreError(f"the store's key serde made {type(data).__name__} of key {key!r}, not bytes")
    return data


class _BytesStoreView:
    """A view over a store of bytes, with the serdes that turn its keys and values back into objects."""

    def __init__(self, store: WindowStore | SessionStore, key_serde: Serde, value_serde: Serde) -> None:
        self._store = store
        self._key_serde = key_serde
        self._value_serde = value_serde

    @property
    def name(self) -> str:
        return self._store.name


class WindowStoreView(_BytesStoreView):
    """A read-only view of a window store: (key, window start) -> value, deserialized.

    Windows are returned by their start; expired windows (older than the store's
    retention) are not, as in the running application.
    """

    _store: WindowStore

    def _load(self, data: bytes) -> tuple[Any, int]:
        timestamp, value = timestamped.decode(data)
        return self._value_serde.deserialize(value), timestamp

    def get(self, key: Any, start: int, default: Any = None) -> Any:
        """The value of ``key``'s window starting at ``start``, or ``default``."""
        data = self._store.get(_key_bytes(self._key_serde, key), start)
        return default if data is None else self._load(data)[0]

    def get_with_timestamp(self, key: Any, start: int) -> tuple[Any, int] | None:
        """``(value, timestamp of the window's latest record)``, or None."""
        data = self._store.get(_key_bytes(self._key_serde, key), start)
        return None if data is None else self._load(data)

    def fetch(self, key: Any, time_from: int, time_to: int, backward: bool = False) -> list[tuple[int, Any]]:
        """``(start, value)`` of ``key``'s windows with ``time_from <= start <= time_to``, by start."""
        items = self._store.fetch(_key_bytes(self._key_serde, key), time_from, time_to, backward)
        return [(start, self._load(data)[0]) for start, data in items]

    def fetch_all(self, time_from: int, time_to: int) -> list[tuple[Any, int, Any]]:
        """``(key, start, value)`` of every window with ``time_from <= start <= time_to``, by key bytes then start."""
        load_key = self._key_serde.deserialize
        return [(load_key(key), start, self._load(data)[0])
                for key, start, data in self._store.fetch_all(time_from, time_to)]

    def all(self) -> list[tuple[Any, int, Any]]:
        """``(key, start, value)`` of every live window."""
        load_key = self._key_serde.deserialize
        return [(load_key(key), start, self._load(data)[0]) for key, start, data in self._store.all()]

    def __len__(self) -> int:
        return sum(1 for _ in self._store.all())

    def __repr__(self) -> str:
        return f"WindowStoreView({self.name!r}, {self.all()!r})"


class SessionStoreView(_BytesStoreView):
    """A read-only view of a session store: sessions as ``Windowed(key, start, end)`` with their values."""

    _store: SessionStore

    def _sessions(self, key: Any, items: Iterator[tuple[int, int, bytes]]) -> list[tuple[Windowed, Any]]:
        load = self._value_serde.deserialize
        return [(Windowed(key, start, end), load(data)) for start, end, data in items]

    def fetch(self, key: Any) -> list[tuple[Windowed, Any]]:
        """Every live session of ``key``, by end then start."""
        return self._sessions(key, self._store.fetch(_key_bytes(self._key_serde, key)))

    def find_sessions(self, key: Any, earliest_end: int, latest_start: int) -> list[tuple[Windowed, Any]]:
        """Sessions of ``key`` that end at or after ``earliest_end`` and start at or before ``latest_start``."""
        items = self._store.find_sessions(_key_bytes(self._key_serde, key), earliest_end, latest_start)
        return self._sessions(key, items)

    def fetch_session(self, key: Any, start: int, end: int, default: Any = None) -> Any:
        data = self._store.fetch_session(_key_bytes(self._key_serde, key), start, end)
        return default if data is None else self._value_serde.deserialize(data)

    def all(self) -> list[tuple[Windowed, Any]]:
        """Every live session, by key bytes, then end, then start."""
        load_key, load = self._key_serde.deserialize, self._value_serde.deserialize
        return [(Windowed(load_key(key), start, end), load(data)) for key, start, end, data in self._store.fetch_all()]

    def __len__(self) -> int:
        return sum(1 for _ in self._store.fetch_all())

    def __repr__(self) -> str:
        return f"SessionStoreView({self.name!r}, {self.all()!r})"


def committed_reads(cache: WriteCache) -> WriteCache:
    """A cache with nothing dirty over ``cache``'s store: reads see the committed state only.

    Its discard count (-1) is one a task's cache never has, so a window or session store
    over it takes the committed observed time, not one an uncommitted put moved on.
    """
    reads = WriteCache(cache.store)
    reads.discards = -1
    return reads


def view_of(spec: StoreSpec, cache: WriteCache) -> StoreView | WindowStoreView | SessionStoreView:
    """The read view that fits a store's kind."""
    if spec.kind == "window":
        assert spec.retention_ms is not None
        store = WindowStore(cache, spec.retention_ms, spec.retain_duplicates)
        return WindowStoreView(store, spec.key_serde, spec.value_serde)
    if spec.kind == "session":
        assert spec.retention_ms is not None
        return SessionStoreView(SessionStore(cache, spec.retention_ms), spec.key_serde, spec.value_serde)
    if spec.kind == "buffer":
        raise StateStoreError(f"store {spec.name} is an internal buffer of results waiting for their window to "
                              "close; read the windowed aggregation's store instead")
    return StoreView(TypedStore(cache, spec.key_serde, spec.value_serde, spec.timestamped))
