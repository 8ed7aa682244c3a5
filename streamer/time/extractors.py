"""Event time of input records: the Kafka record's timestamp, or a user function of the deserialized record.

A record whose event time is invalid (negative, None, not an int) is never processed
with a made-up time: the source hands it to the deserialization error policy as an
``InvalidTimestampError``, because a wrong time would silently put it into the wrong
window or close windows too early.
"""

from __future__ import annotations

from typing import Any, Callable

#: ``fn(key, value, record_timestamp) -> int``: a record's event time in ms since the epoch.
TimestampExtractor = Callable[[Any, Any, int], int]


def all_valid(timestamps: list[Any]) -> bool:
    """True if every timestamp is a non-negative int (bools are not timestamps)."""
    return all(type(t) is int for t in timestamps) and (not timestamps or min(timestamps) >= 0)


def invalid_reason(timestamp: Any, extracted: bool) -> str | None:
    """Why ``timestamp`` cannot be a record's event time, or None if it can."""
    origin = "the timestamp extractor returned" if extracted else "the record's Kafka timestamp is"
    if type(timestamp) is not int:
        return f"{origin} {timestamp!r} ({type(timestamp).__name__}), not an int of milliseconds"
    if timestamp < 0:
        hint = "" if extracted else "; give the source a timestamp_extractor"
        return f"{origin} {timestamp}, a negative time{hint}"
    return None
