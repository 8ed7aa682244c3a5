"""Values stored with the timestamp of the record that last set them.

Aggregates and windows carry a timestamp of their own (the latest of the records that
built them, as Kafka Streams' timestamped stores do), so it is kept in front of the
value bytes: in the store and in the changelog alike, and a restore keeps it.
"""

from __future__ import annotations

_SIZE = 8


def encode(timestamp: int, value: bytes) -> bytes:
    """``timestamp`` as 8 big-endian signed bytes, then ``value``."""
    return timestamp.to_bytes(_SIZE, "big", signed=True) + value


def decode(data: bytes) -> tuple[int, bytes]:
    """The (timestamp, value bytes) that ``encode`` joined."""
    return int.from_bytes(data[:_SIZE], "big", signed=True), data[_SIZE:]


def timestamp_of(data: bytes) -> int:
    return int.from_bytes(data[:_SIZE], "big", signed=True)
