"""A task's stream time and processor metadata: advanced by processing, committed with the offsets.

Stream time is the highest event time of the records the task has taken from its
input (Kafka Streams' definition): it never goes back, and records with invalid
timestamps never move it. Processors run a batch at a time, so within a batch the
stream time "as of" a record is the highest of the time before the batch and the
timestamps of the batch up to that record; it is computed only when a processor
asks (a prefix maximum, once per batch, then a binary search per question).

Changes count once committed: ``commit()`` after the offsets are, ``discard()`` after
a failed commit or an aborted batch brings back the committed values, as state does.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from typing import Iterable

from streamer.record import Record
from streamer.time import metadata as offset_metadata


class TaskTime:
    """Stream time and processor metadata of one task."""

    __slots__ = ("stream_time", "_committed_time", "_before", "_batch", "_timestamps", "_offsets", "_prefix",
                 "_metadata", "_pending")

    def __init__(self) -> None:
        self.stream_time = -1
        self._committed_time = -1
        self._before = -1
        self._batch: list[Record] | None = None
        self._timestamps: list[int] = []
        self._offsets: list[int] | None = None
        self._prefix: list[int] = []
        self._metadata: dict[str, int] = {}
        self._pending: dict[str, int] = {}

    # -- stream time ----------------------------------------------------------------------

    def begin_batch(self, records: list[Record], timestamps: list[int]) -> bool:
        """The task takes ``records`` (event times ``timestamps``, in offset order); True if time advanced."""
        self._before = before = self.stream_time
        self._batch = records
        self._timestamps = timestamps
        self._offsets = None
        newest = max(timestamps)
        if newest > before:
            self.stream_time = newest
            return True
        return False

    def end_batch(self) -> None:
        self._batch = None
        self._offsets = None
        self._timestamps = []
        self._prefix = []

    def of(self, record: Record) -> int:
        """Stream time as of the input record ``record`` descends from (its offset in the current batch)."""
        batch = self._batch
        if batch is None:
            return self.stream_time
        if self._offsets is None:
            self._offsets = [r.offset for r in batch]
            self._prefix = list(accumulate(self._timestamps, max, initial=self._before))[1:]
        index = bisect_right(self._offsets, record.offset) - 1
        return self._prefix[index] if index >= 0 else self._before

    # -- processor metadata ---------------------------------------------------------------

    def get(self, key: str) -> int | None:
        value = self._pending.get(key)
        return self._metadata.get(key) if value is None else value

    def set(self, key: str, value: int) -> None:
        if type(value) is not int:
            raise TypeError(f"processor metadata values are ints, got {value!r} for {key!r}")
        if key not in self._metadata and key not in self._pending:
            offset_metadata.check_room([*self._metadata, *self._pending, key])
        self._pending[key] = value

    # -- commits --------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return bool(self._pending) or self.stream_time != self._committed_time

    def encode(self) -> str:
        """The offset commit metadata of the current time and metadata (committed or not)."""
        return offset_metadata.encode(self.stream_time, {**self._metadata, **self._pending})

    def commit(self) -> None:
        self._metadata.update(self._pending)
        self._pending.clear()
        self._committed_time = self.stream_time

    def discard(self) -> None:
        self._pending.clear()
        self.stream_time = self._committed_time

    def restore(self, committed: Iterable[str | None]) -> None:
        """Resume from the offset commit metadata of the task's partitions (see streamer.time.metadata)."""
        found = offset_metadata.newest(committed)
        if found is not None:
            self.stream_time = self._committed_time = found[0]
            self._metadata = dict(found[1])
            self._pending.clear()
