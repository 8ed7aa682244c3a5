"""A key-value store seen through serdes: what user processors and store queries work with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamer.errors import StateStoreError
from streamer.serde import Serde, serialize_required
from streamer.state import timestamped as ts_codec
from streamer.state.write_cache import WriteCache


class TypedStore:
    """Keys and values as Python objects over a task's write cache.

    Range scans follow the order of the serialized keys, which for the str serde is
    the strings' UTF-8 byte order. A ``timestamped`` store (aggregates, tables) keeps
    each value's timestamp in front of its bytes; reads return the plain value, and
    ``get_with_timestamp`` both.
    """

    def __init__(self, cache: WriteCache, key_serde: Serde, value_serde: Serde, timestamped: bool = False) -> None:
        self.cache = cache
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.timestamped = timestamped

    @property
    def name(self) -> str:
        return self.cache.name

    def _key_bytes(self, key: Any) -> bytes:
        return serialize_required(self.key_serde, key, f"key of store {self.name!r}")

    def _load(self, data: bytes) -> Any:
        if self.timestamped:
            data = ts_codec.decode(data)[1]
        return self.value_serde.deserialize(data)

    def get(self, key: Any, default: Any = None) -> Any:
        data = self.cache.get(self._key_bytes(key))
        return default if data is None else self._load(data)

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        """``(value, timestamp)`` of a timestamped store's entry, or None if there is none."""
        if not self.timestamped:
            raise StateStoreError(f"store {self.name} keeps no timestamps; use get()")
        data = self.cache.get(self._key_bytes(key))
        if data is None:
            return None
        timestamp, value = ts_codec.decode(data)
        return self.value_serde.deserialize(value), timestamp

    def put(self, key: Any, value: Any, timestamp: int | None = None) -> None:
        """Store ``value`` (None deletes, as a tombstone does); a timestamped store needs its ``timestamp``."""
        key_bytes = self._key_bytes(key)
        if value is None:
            self.cache.delete(key_bytes)
            return
        if self.timestamped:
            if timestamp is None:
                raise StateStoreError(f"store {self.name} keeps a timestamp per value: pass put(key, value, timestamp)")
            what = f"value of store {self.name!r}"
            self.cache.put(key_bytes, ts_codec.encode(timestamp, serialize_required(self.value_serde, value, what)))
            return
        data = self.value_serde.serialize(value)
        if data is None:  # the serde's own tombstone
            self.cache.delete(key_bytes)
        else:
            self.cache.put(key_bytes, data)

    def delete(self, key: Any) -> None:
        self.cache.delete(self._key_bytes(key))

    def range(self, start: Any = None, end: Any = None, reverse: bool = False) -> Iterator[tuple[Any, Any]]:
        """Entries with ``start <= key < end`` (None: unbounded), in serialized-key order."""
        low = None if start is None else self.key_serde.serialize(start)
        high = None if end is None else self.key_serde.serialize(end)
        load_key, load_value = self.key_serde.deserialize, self._load
        for key, value in self.cache.range(low, high, reverse):
            yield load_key(key), load_value(value)

    def all(self) -> dict[Any, Any]:
        return dict(self.range())

    def __contains__(self, key: Any) -> bool:
        return self.cache.get(self._key_bytes(key)) is not None


class TimestampedValueSerde:
    """Reads the bytes of a timestamped store (or its changelog) as the plain value.

    For readers outside the processors, such as a test reading a changelog topic;
    writing needs a timestamp, which a serde is not given.
    """

    def __init__(self, inner: Serde) -> None:
        self.inner = inner

    def serialize(self, value: Any) -> bytes:
        raise StateStoreError("a timestamped store's values are written with their timestamp, by its processor")

    def deserialize(self, data: bytes | None) -> Any:
        return None if data is None else self.inner.deserialize(ts_codec.decode(data)[1])
