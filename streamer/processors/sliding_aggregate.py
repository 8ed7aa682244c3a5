"""Aggregation over sliding windows (Kafka Streams' KStreamSlidingWindowAggregate).

A sliding window ``[start, start + difference]`` (both ends inclusive) exists for each
distinct set of a key's records that lie within ``difference`` of each other: a record
at t has its "left" window ``[t - difference, t]`` and, when a later record is near
enough, a "right" window ``[t + 1, t + 1 + difference]``. A new record updates every
existing window that contains it and creates its own left and right windows (and the
right window of the record before it), copying aggregates from the neighbours instead
of re-reading records.

A window is open while its end is at or after stream time minus grace. A record can be
too late for its own left window and still fall into later windows that are open: those
are updated, and only a record with no open window at all (t + difference < stream time
- grace) is dropped as late.

Records before ``difference`` (t < difference) cannot have a left window starting at a
non-negative time; as in Kafka Streams they go to the window ``[0, difference]`` instead.
"""

from __future__ import annotations

from typing import Any

from streamer.processors.change import Change
from streamer.processors.window_base import Aggregator, Initializer, WindowedAggregation, trigger_context
from streamer.record import Record
from streamer.serde import Serde
from streamer.state.timestamped import decode, encode, timestamp_of
from streamer.state.window_store import WindowStore
from streamer.state.write_cache import WriteCache
from streamer.windows.windowed import Windowed
from streamer.windows.windows import SlidingWindows

#: (aggregate, timestamp of the window's latest record)
Entry = tuple[Any, int]


class SlidingAggregate(WindowedAggregation):
    """``aggregator(key, value, aggregate)`` into each open sliding window of a record.

    Emits on every window update unless ``buffer_name`` is given (emit on window close:
    one final result per window, by window start and then key bytes).
    """

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde, windows: SlidingWindows,
                 retention_ms: int, initializer: Initializer, aggregator: Aggregator, *,
                 buffer_name: str | None = None, idle_ms: int | None = None) -> None:
        super().__init__(name, store_name, key_serde, value_serde, retention_ms, initializer, aggregator,
                         buffer_name, idle_ms)
        self.difference = windows.time_difference_ms
        self.grace = windows.grace_ms
        self.store: WindowStore
        self._out: list[Record] = []

    def open_store(self, cache: WriteCache) -> None:
        self.store = WindowStore(cache, self.retention_ms)

    def _decode(self, data: bytes) -> Entry:
        timestamp, value = decode(data)
        return self.value_serde.deserialize(value), timestamp

    def process(self, records: list[Record]) -> list[Record]:
        self._out = out = []
        self.input_arrived()
        difference = self.difference
        try:
            for record, key in zip(records, self.encoded_keys(records)):
                if key is None or record.value is None:
                    continue
                timestamp = record.timestamp
                if timestamp > self.observed_time:
                    self.observed_time = timestamp
                    out.extend(self.emit_closed(record))
                close_time = self.observed_time - self.grace
                if timestamp + difference < close_time:
                    self.context.record_dropped(
                        self.name, record,
                        f"late: every sliding window of timestamp {timestamp} closed (stream time "
                        f"{self.observed_time}, time difference {difference} ms, grace {self.grace} ms)",
                    )
                    continue
                try:
                    if timestamp < difference:
                        self._early(record, key, close_time)
                    else:
                        self._regular(record, key, close_time)
                except Exception as error:
                    self.context.record_error(self.name, record, error)
        finally:
            self.save_time()
            self._out = []
        return out

    def _regular(self, record: Record, key: bytes, close_time: int) -> None:
        """Windows of the key from the newest start back: those with the record, then its left neighbour."""
        t, difference = record.timestamp, self.difference
        starts: set[int] = set()
        left: Entry | None = None
        right: Entry | None = None
        left_exists = right_exists = False
        previous: int | None = None  # timestamp of the key's latest record before t
        for start, data in list(self.store.fetch(key, max(0, t - 2 * difference), t + 1, backward=True)):
            starts.add(start)
            end = start + difference
            if start == t + 1:
                right_exists = True
            elif end > t:
                entry = self._decode(data)
                if right is None:
                    right = entry
                self._update(record, key, start, entry, close_time, created=False)
            elif end == t:
                left_exists = True
                self._update(record, key, start, self._decode(data), close_time, created=False)
                latest = timestamp_of(data)
                if latest >= t:
                    return  # a record at t was here before: every window it needs exists
                previous = latest
            else:
                left, previous = self._decode(data), timestamp_of(data)
                break
        if previous is not None:
            previous_right = previous + 1
            if previous_right not in starts and previous_right + difference >= t:
                self._update(record, key, previous_right, (self.initializer(), t), close_time, created=True)
        if not left_exists:
            near = previous is not None and left is not None and t - difference <= previous
            seed = (left[0], t) if near else (self.initializer(), t)  # type: ignore[index]
            self._update(record, key, t - difference, seed, close_time, created=True)
        if not right_exists and right is not None and right[1] > t:
            self._copy_right(record, key, right)

    def _early(self, record: Record, key: bytes, close_time: int) -> None:
        """A record before ``difference``: its left window is ``[0, difference]``."""
        t = record.timestamp
        starts: set[int] = set()
        first: Entry | None = None  # the [0, difference] window
        right: Entry | None = None
        right_exists = False
        previous: int | None = None
        for start, data in list(self.store.fetch(key, 0, t + 1)):
            starts.add(start)
            if start == 0:
                first = self._decode(data)
                if first[1] < t:
                    previous = first[1]
            elif start <= t:
                right = self._decode(data)
                self._update(record, key, start, right, close_time, created=False)
            else:
                right_exists = True
        if right is None and first is not None and first[1] > t:
            right = first
        if not right_exists and right is not None and right[1] > t:
            self._copy_right(record, key, right)
        if previous is not None and previous + 1 not in starts:
            self._update(record, key, previous + 1, (self.initializer(), t), close_time, created=True)
        if first is None:
            self._update(record, key, 0, (self.initializer(), t), close_time, created=True)
        else:
            self._update(record, key, 0, first, close_time, created=False)

    def _update(self, record: Record, key: bytes, start: int, entry: Entry, close_time: int, created: bool) -> None:
        """Fold the record into one window, if it is still open (its end at or after the close time)."""
        end = start + self.difference
        if end < close_time:
            return
        old = entry[0]
        new = self.aggregator(record.key, record.value, old)
        timestamp = record.timestamp if created else max(record.timestamp, entry[1])
        self._put(record, key, start, new, timestamp, old, created)

    def _copy_right(self, record: Record, key: bytes, right: Entry) -> None:
        """The record's right window holds what the window it falls into holds after it: a copy."""
        self._put(record, key, record.timestamp + 1, right[0], right[1], None, created=True)

    def _put(self, record: Record, key: bytes, start: int, value: Any, timestamp: int, old: Any,
             created: bool) -> None:
        data = None if value is None else encode(timestamp, self.value_serde.serialize(value) or b"")
        self.store.put(key, start, data)
        if self.finals is None:
            self._out.append(Record(Windowed(record.key, start, start + self.difference), Change(value, old),
                                    timestamp, record.headers, record.offset))
        elif created:
            self.finals.put(start, key, b"")

    def emit_closed(self, trigger: Record | None) -> list[Record]:
        """Windows whose end is before stream time minus grace, by start and then key bytes."""
        if self.finals is None:
            return []
        due = self.finals.evict(self.observed_time - self.grace - self.difference - 1)
        headers, offset = trigger_context(trigger)
        load_key = self.key_serde.deserialize
        out: list[Record] = []
        for start, key, _ in due:
            data = self.store.get(key, start)
            if data is not None:
                value, timestamp = self._decode(data)
                out.append(Record(Windowed(load_key(key), start, start + self.difference), Change(value, None),
                                  timestamp, headers, offset))
        return out
