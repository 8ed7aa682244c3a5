"""Serdes turn keys and values into bytes and back.

A serde is any object with ``serialize(obj) -> bytes | None`` and
``deserialize(data: bytes | None) -> obj``. ``None`` passes through both ways so
that tombstones stay tombstones.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Protocol, runtime_checkable

import orjson

from streamer.errors import SerializationError


@runtime_checkable
class Serde(Protocol):
    def serialize(self, obj: Any) -> bytes | None: ...

    def deserialize(self, data: bytes | None) -> Any: ...


def serialize_many(serde: Serde, objs: list[Any]) -> list[bytes | None]:
    """Serialize a batch: the serde's own ``serialize_many`` if it has one (one call per batch)."""
    many = getattr(serde, "serialize_many", None)
    if many is not None:
        return many(objs)
    dump = serde.serialize
    return [dump(obj) for obj in objs]


def serialize_required(serde: Serde, obj: Any, what: str) -> bytes:
    """``serde.serialize(obj)`` where None cannot stand for the bytes: a store's key, a value stored with a timestamp.

    ``what`` names the object in the error, e.g. "key of store 'counts'".
    """
    data = serde.serialize(obj)
    if data is not None:
        return data
    if obj is None:
        raise SerializationError(f"{what} is None; a store has no None key: skip or re-key records without one first")
    raise SerializationError(
        f"{type(serde).__name__} serialized {what} {obj!r:.60} to None, the tombstone; "
        "its serialize() must return bytes for every value that is not None"
    )


def deserialize_many(serde: Serde, datas: list[bytes | None]) -> list[Any]:
    """Deserialize a batch: the serde's own ``deserialize_many`` if it has one."""
    many = getattr(serde, "deserialize_many", None)
    if many is not None:
        return many(datas)
    load = serde.deserialize
    return [load(data) for data in datas]


_RAW = (bytes, bytearray, memoryview)


def _not_bytes(obj: Any) -> SerializationError:
    return SerializationError(
        f"{type(obj).__name__} value {obj!r:.60} given to the bytes serde (the default); "
        "pass key_serde= / value_serde= (e.g. 'str' or 'json') where the stream is written or grouped"
    )


class BytesSerde:
    """Identity: values stay raw bytes. The cheapest choice on a hot path."""

    name = "bytes"

    def serialize(self, obj: bytes | None) -> bytes | None:
        if obj is not None and not isinstance(obj, _RAW):
            raise _not_bytes(obj)
        return obj

    def deserialize(self, data: bytes | None) -> bytes | None:
        return data

    def serialize_many(self, objs: list[bytes | None]) -> list[bytes | None]:
        for obj in objs:
            if obj is not None and obj.__class__ is not bytes and not isinstance(obj, _RAW):
                raise _not_bytes(obj)
        return objs

    def deserialize_many(self, datas: list[bytes | None]) -> list[bytes | None]:
        return datas


class StringSerde:
    """UTF-8 text."""

    name = "str"

    def serialize(self, obj: str | None) -> bytes | None:
        return None if obj is None else obj.encode()

    def deserialize(self, data: bytes | None) -> str | None:
        return None if data is None else data.decode()

    def serialize_many(self, objs: list[str | None]) -> list[bytes | None]:
        return [None if obj is None else obj.encode() for obj in objs]

    def deserialize_many(self, datas: list[bytes | None]) -> list[str | None]:
        return [None if data is None else data.decode() for data in datas]


class IntSerde:
    """64-bit big-endian signed integers, byte-compatible with Kafka's LongSerde."""

    name = "int"
    _struct = struct.Struct(">q")

    def serialize(self, obj: int | None) -> bytes | None:
        return None if obj is None else self._struct.pack(obj)

    def deserialize(self, data: bytes | None) -> int | None:
        return None if data is None else self._struct.unpack(data)[0]


class FloatSerde:
    """IEEE 754 doubles, big-endian, byte-compatible with Kafka's DoubleSerde."""

    name = "float"
    _struct = struct.Struct(">d")

    def serialize(self, obj: float | None) -> bytes | None:
        return None if obj is None else self._struct.pack(obj)

    def deserialize(self, data: bytes | None) -> float | None:
        return None if data is None else self._struct.unpack(data)[0]


class JsonSerde:
    """JSON through orjson, the fastest JSON codec for CPython."""

    name = "json"

    def serialize(self, obj: Any) -> bytes | None:
        return None if obj is None else orjson.dumps(obj)

    def deserialize(self, data: bytes | None) -> Any:
        return None if data is None else orjson.loads(data)

    def serialize_many(self, objs: list[Any]) -> list[bytes | None]:
        dumps = orjson.dumps
        return [None if obj is None else dumps(obj) for obj in objs]

    def deserialize_many(self, datas: list[bytes | None]) -> list[Any]:
        loads = orjson.loads
        return [None if data is None else loads(data) for data in datas]


class FunctionSerde:
    """A serde from two plain functions, for users who do not want a class."""

    name = "custom"

    def __init__(self, serialize: Callable[[Any], bytes], deserialize: Callable[[bytes], Any]) -> None:
        self._serialize = serialize
        self._deserialize = deserialize

    def serialize(self, obj: Any) -> bytes | None:
        return None if obj is None else self._serialize(obj)

    def deserialize(self, data: bytes | None) -> Any:
        return None if data is None else self._deserialize(data)


BYTES = BytesSerde()
STRING = StringSerde()
INT = IntSerde()
FLOAT = FloatSerde()
JSON = JsonSerde()

_BY_NAME: dict[str, Serde] = {"bytes": BYTES, "str": STRING, "string": STRING, "int": INT, "float": FLOAT, "json": JSON}

SerdeLike = Serde | str | None


def resolve_serde(serde: SerdeLike, default: Serde = BYTES) -> Serde:
    """Accept a serde object, a short name ("json", "str", ...) or None for the default."""
    if serde is None:
        return default
    if isinstance(serde, str):
        try:
            return _BY_NAME[serde]
        except KeyError:
            raise SerializationError(
                f"unknown serde name {serde!r}; use one of {sorted(_BY_NAME)} or pass a serde object"
            ) from None
    if not isinstance(serde, Serde):
        raise SerializationError(
            f"{serde!r} is not a serde: it needs serialize(obj) and deserialize(data) methods"
        )
    return serde
