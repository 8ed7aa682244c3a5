"""A key-value store seen through serdes: what user processors and store queries work with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamer.serde import Serde
from streamer.state.write_cache import WriteCache


class TypedStore:
    """Keys and values as Python objects over a task's write cache.

    Range scans follow the order of the serialized keys, which for the str serde is
    the strings' UTF-8 byte order.
    """

    def __init__(self, cache: WriteCache, key_serde: Serde, value_serde: Serde) -> None:
        self.cache = cache
        self.key_serde = key_serde
        self.value_serde = value_serde

    @property
    def name(self) -> str:
        return self.cache.name

    def get(self, key: Any, default: Any = None) -> Any:
        data = self.cache.get(self.key_serde.serialize(key))
        return default if data is None else self.value_serde.deserialize(data)

    def put(self, key: Any, value: Any) -> None:
        """Store ``value``; None deletes, as a tombstone does."""
        key_bytes = self.key_serde.serialize(key)
        if value is None:
            self.cache.delete(key_bytes)
        else:
            self.cache.put(key_bytes, self.value_serde.serialize(value))

    def delete(self, key: Any) -> None:
        self.cache.delete(self.key_serde.serialize(key))

    def range(self, start: Any = None, end: Any = None, reverse: bool = False) -> Iterator[tuple[Any, Any]]:
        """Entries with ``start <= key < end`` (None: unbounded), in serialized-key order."""
        low = None if start is None else self.key_serde.serialize(start)
        high = None if end is None else self.key_serde.serialize(end)
        load_key, load_value = self.key_serde.deserialize, self.value_serde.deserialize
        for key, value in self.cache.range(low, high, reverse):
            yield load_key(key), load_value(value)

    def all(self) -> dict[Any, Any]:
        return dict(self.range())

    def __contains__(self, key: Any) -> bool:
        return self.cache.get(self.key_serde.serialize(key)) is not None
