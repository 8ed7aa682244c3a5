"""What a task commits with its input offsets: its stream time and its processors' metadata.

Kafka keeps a string of metadata with every committed offset (at most
``offset.metadata.max.bytes``, 4096 by default), in the same commit as the offset
itself, under both guarantees (a transaction's offsets carry it too). A task writes the
same text to each of its input partitions; on open it takes the copy with the highest
stream time, so a restart resumes the stream time the committed offsets belong to and
never reopens a window that was already closed.

Layout (JSON, versioned): ``{"v": 1, "t": <stream time>, "m": {<key>: <int>, ...}}``.
"""

from __future__ import annotations

import logging
from typing import Iterable, Mapping

import orjson

from streamer.errors import OffsetMetadataError

log = logging.getLogger("streamer.time")

VERSION = 1
#: Kafka's default offset.metadata.max.bytes: longer metadata fails the whole commit.
MAX_METADATA_BYTES = 4096
#: Room a value takes at most: 20 digits and a sign of a 64-bit int, plus quotes, colon, comma.
_ENTRY_OVERHEAD = 25


def encode(stream_time: int, processor_metadata: Mapping[str, int]) -> str:
    data: dict[str, object] = {"v": VERSION, "t": stream_time}
    if processor_metadata:
        data["m"] = processor_metadata
    return orjson.dumps(data).decode()


def decode(text: str | None) -> tuple[int, dict[str, int]] | None:
    """(stream time, processor metadata) from committed metadata; None if there is none of ours."""
    if not text:
        return None
    try:
        data = orjson.loads(text)
        if data.get("v") != VERSION:
            raise ValueError(f"version {data.get('v')!r}")
        metadata = {str(k): int(v) for k, v in data.get("m", {}).items()}
        return int(data["t"]), metadata
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        log.warning("ignoring offset commit metadata that streamer did not write (%r): %.80s", error, text)
        return None


def newest(texts: Iterable[str | None]) -> tuple[int, dict[str, int]] | None:
    """The decoded copy with the highest stream time among a task's partitions."""
    decoded = [d for d in (decode(t) for t in texts) if d is not None]
    return max(decoded, key=lambda d: d[0]) if decoded else None


def check_room(keys: Iterable[str]) -> None:
    """Fail when a key is added, not at commit, if the metadata could outgrow Kafka's limit."""
    worst = len(encode(-(2**63), {})) + 8 + sum(len(orjson.dumps(k)) + _ENTRY_OVERHEAD for k in keys)
    if worst > MAX_METADATA_BYTES:
        raise OffsetMetadataError(
            f"processor metadata with keys {sorted(keys)!r} could take {worst} bytes of offset commit metadata, "
            f"more than Kafka's default offset.metadata.max.bytes ({MAX_METADATA_BYTES}); use fewer or shorter keys"
        )
