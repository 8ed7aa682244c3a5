"""The record that flows between processors.

A plain slotted class rather than a dataclass: records are created once per input
message on the hot path, and a hand-written ``__init__`` is the cheapest constructor.
"""

from __future__ import annotations

from typing import Any

Headers = list[tuple[str, bytes]]


class Record:
    """A key/value pair with its event timestamp (ms), headers and source offset.

    ``offset`` is the offset of the input message the record descends from; it orders
    records again where branches of one batch merge, and finds the raw input for a
    dead-letter entry. Processors treat records as immutable and build new ones.
    """

    __slots__ = ("key", "value", "timestamp", "headers", "offset")

    def __init__(
        self,
        key: Any,
        value: Any,
        timestamp: int,
        headers: Headers | None = None,
        offset: int = -1,
    ) -> None:
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.headers = headers
        self.offset = offset

    def with_value(self, value: Any) -> Record:
        return Record(self.key, value, self.timestamp, self.headers, self.offset)

    def with_key_value(self, key: Any, value: Any) -> Record:
        return Record(key, value, self.timestamp, self.headers, self.offset)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.key, self.value, self.timestamp, self.headers) == (
            other.key,
            other.value,
            other.timestamp,
            other.headers,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Record(key={self.key!r}, value={self.value!r}, timestamp={self.timestamp})"
