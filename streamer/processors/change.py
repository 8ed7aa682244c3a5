"""Table updates: the new value of a key together with the value it replaced."""

from __future__ import annotations

from typing import Any

from streamer.errors import DeserializationError
from streamer.serde import Serde

_OLD = 0
_NEW = 1
_BOTH = 2


class Change:
    """What a table forwards: ``new`` (None = deleted) and ``old`` (None = absent before).

    Downstream tables need ``old`` to take a key's previous contribution back out of an
    aggregate when the key moves to another group.
    """

    __slots__ = ("new", "old")

    def __init__(self, new: Any, old: Any) -> None:
        self.new = new
        self.old = old

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Change) and (self.new, self.old) == (other.new, other.old)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Change(new={self.new!r}, old={self.old!r})"


class ChangeSerde:
    """Carries a grouped table's update through a repartition topic.

    A row that moves between groups travels as two records (one per group, since the
    groups may live in different partitions); a row that stays in its group travels as
    one record with both values, so the aggregate applies both in one step and emits
    one net change (Kafka Streams since 3.5, KIP-904). Byte layout, tag byte first:

    - ``0x00`` + old value bytes: take the old value out
    - ``0x01`` + new value bytes: add the new value
    - ``0x02`` + length of the new value bytes (unsigned LEB128 varint) + new value
      bytes + old value bytes: both, in that order
    """

    def __init__(self, inner: Serde) -> None:
        self.inner = inner

    def serialize(self, change: Change) -> bytes:
        dump = self.inner.serialize
        if change.old is None:
            return bytes((_NEW,)) + (dump(change.new) or b"")
        if change.new is None:
            return bytes((_OLD,)) + (dump(change.old) or b"")
        new = dump(change.new) or b""
        return bytes((_BOTH,)) + _varint(len(new)) + new + (dump(change.old) or b"")

    def deserialize(self, data: bytes | None) -> Change | None:
        if data is None:
            return None
        load = self.inner.deserialize
        tag = data[0] if data else -1
        if tag == _NEW:
            return Change(load(data[1:]), None)
        if tag == _OLD:
            return Change(None, load(data[1:]))
        if tag == _BOTH:
            length, start = _read_varint(data, 1)
            end = start + length
            if end > len(data):
                raise DeserializationError(f"table change of {len(data)} bytes announces a {length}-byte new value")
            return Change(load(data[start:end]), load(data[end:]))
        raise DeserializationError(
            f"not a table change: tag byte {tag} (expected 0, 1 or 2); does another producer write this topic?"
        )


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint at ``at`` and the offset after it."""
    value = shift = 0
    for i in range(at, min(len(data), at + 5)):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    raise DeserializationError("table change with a malformed length varint")
