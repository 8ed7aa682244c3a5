"""Table updates: the new value of a key together with the value it replaced."""

from __future__ import annotations

from typing import Any

from streamer.serde import Serde

_OLD = b"\x00"
_NEW = b"\x01"


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
    """Carries half a Change through a repartition topic: a tag byte, then the inner value.

    A grouped table sends a key's old value (to subtract) and new value (to add) as two
    records, since they may belong to different groups and so different partitions.
    """

    def __init__(self, inner: Serde) -> None:
        self.inner = inner

    def serialize(self, change: Change) -> bytes:
        if change.new is not None:
            return _NEW + (self.inner.serialize(change.new) or b"")
        return _OLD + (self.inner.serialize(change.old) or b"")

    def deserialize(self, data: bytes | None) -> Change | None:
        if data is None:
            return None
        value = self.inner.deserialize(data[1:])
        return Change(value, None) if data[:1] == _NEW else Change(None, value)
