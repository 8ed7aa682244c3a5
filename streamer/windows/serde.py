"""Serdes for windowed keys (``Windowed``), in layouts other Kafka clients can read.

* ``TimeWindowedSerde``: Kafka Streams' time-windowed key layout, what its
  ``TimeWindowedSerializer`` writes: ``inner key bytes + window start`` (8 bytes,
  big-endian signed, epoch ms). The end is not stored: it is start + window size, so
  the reader must know the size (Java: ``WindowedSerdes.timeWindowedSerdeFrom(cls, size)``).
* ``SessionWindowedSerde``: Kafka Streams' session key layout (``SessionWindowedSerializer``):
  ``inner key bytes + end (8 bytes) + start (8 bytes)``, both big-endian signed epoch ms.
* ``WindowedJsonSerde``: ``{"key": <key>, "start": <ms>, "end": <ms>}`` in UTF-8 JSON, for
  consumers that are not Kafka Streams.

None passes through as None (a tombstone's key stays absent). A windowed key must
have a key that serializes to bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

from streamer.errors import SerializationError
from streamer.serde import SerdeLike, resolve_serde
from streamer.windows.windowed import Windowed

_TIME_SIZE = 8
_MAX_TIME = 2**63 - 1


def _inner_bytes(serde_name: str, inner: Any, obj: Any) -> tuple[Windowed, bytes]:
    if not isinstance(obj, Windowed):
        raise SerializationError(f"{serde_name} serializes Windowed keys, not {type(obj).__name__}: {obj!r}")
    data = inner.serialize(obj.key)
    if not isinstance(data, bytes):
        raise SerializationError(f"{serde_name}: the inner serde made {type(data).__name__} of key {obj.key!r}, "
                                 "not bytes; give a serde that serializes the key to bytes")
    return obj, data


def _time(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + _TIME_SIZE], "big", signed=True)


class TimeWindowedSerde:
    """``Windowed`` keys of time windows of ``window_size_ms``: key bytes + start (8 bytes BE signed)."""

    name = "time-windowed"

    def __init__(self, inner: SerdeLike, window_size_ms: int) -> None:
        if window_size_ms <= 0:
            raise ValueError(f"window_size_ms must be > 0, not {window_size_ms}")
        self.inner = resolve_serde(inner)
        self.window_size_ms = window_size_ms

    def serialize(self, obj: Windowed | None) -> bytes | None:
        if obj is None:
            return None
        windowed, key = _inner_bytes(self.name, self.inner, obj)
        return key + windowed.start.to_bytes(_TIME_SIZE, "big", signed=True)

    def deserialize(self, data: bytes | None) -> Windowed | None:
        if data is None:
            return None
        if len(data) < _TIME_SIZE:
            raise SerializationError(f"a time-windowed key has at least {_TIME_SIZE} bytes; got {len(data)}")
        start = _time(data, len(data) - _TIME_SIZE)
        end = min(start + self.window_size_ms, _MAX_TIME)  # Kafka Streams caps an overflowing end
        return Windowed(self.inner.deserialize(data[:-_TIME_SIZE]), start, end)


class SessionWindowedSerde:
    """``Windowed`` keys of sessions: key bytes + end (8 bytes BE signed) + start (8 bytes BE signed)."""

    name = "session-windowed"

    def __init__(self, inner: SerdeLike) -> None:
        self.inner = resolve_serde(inner)

    def serialize(self, obj: Windowed | None) -> bytes | None:
        if obj is None:
            return None
        windowed, key = _inner_bytes(self.name, self.inner, obj)
        return (key + windowed.end.to_bytes(_TIME_SIZE, "big", signed=True)
                + windowed.start.to_bytes(_TIME_SIZE, "big", signed=True))

    def deserialize(self, data: bytes | None) -> Windowed | None:
        if data is None:
            return None
        if len(data) < 2 * _TIME_SIZE:
            raise SerializationError(f"a session-windowed key has at least {2 * _TIME_SIZE} bytes; got {len(data)}")
        at = len(data) - 2 * _TIME_SIZE
        return Windowed(self.inner.deserialize(data[:at]), _time(data, at + _TIME_SIZE), _time(data, at))


class WindowedJsonSerde:
    """``Windowed`` keys as ``{"key": ..., "start": ..., "end": ...}`` JSON.

    Without ``inner`` the key goes into the JSON as it is (it must be JSON-serializable);
    with one, ``inner`` must write the key as JSON bytes (a custom JSON serde, say),
    which are embedded unchanged.
    """

    name = "windowed-json"

    def __init__(self, inner: SerdeLike = None) -> None:
        self.inner = None if inner is None else resolve_serde(inner)

    def serialize(self, obj: Windowed | None) -> bytes | None:
        if obj is None:
            return None
        if self.inner is None:
            if not isinstance(obj, Windowed):
                raise SerializationError(f"{self.name} serializes Windowed keys, not {type(obj).__name__}: {obj!r}")
            key: Any = obj.key
        else:
            obj, data = _inner_bytes(self.name, self.inner, obj)
            key = orjson.Fragment(data)
        try:
            return orjson.dumps({"key": key, "start": obj.start, "end": obj.end})
        except TypeError as error:
            raise SerializationError(f"{self.name}: cannot write key {obj.key!r} as JSON: {error}; "
                                     "give an inner serde that does") from error

    def deserialize(self, data: bytes | None) -> Windowed | None:
        if data is None:
            return None
        try:
            parsed = orjson.loads(data)
            key, start, end = parsed["key"], parsed["start"], parsed["end"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise SerializationError(f"{self.name}: {data[:100]!r} is not a windowed key "
                                     '({"key": ..., "start": ..., "end": ...})') from error
        if self.inner is not None:
            key = self.inner.deserialize(orjson.dumps(key))
        return Windowed(key, start, end)
