"""Windowed stream-stream joins, after Kafka Streams' KStreamKStreamJoin (its left and right side
processors, KStreamJoinWindow and the shared outer-join store of KS >= 3.1).

Each input is first marked with its side (``JoinInput``), so one ``StreamStreamJoin``
processor takes both; where the two inputs descend from the same records (a self-join),
the task graph hands it both sides' records of a batch merged in input order, so each
record is joined on one side and then on the other, as Kafka Streams does record by record.

Per record of one side ("this"), with "other" the opposite side:

1. the join's stream time (the highest timestamp either side has seen, saved as processor
   metadata with the task's offsets) moves on;
2. a null key: left and outer joins emit ``joiner`` with None for the other side at once
   (KIP-962), an inner join drops it; a null value is dropped;
3. left and outer joins: if the record moved stream time, unmatched records whose window
   has closed (end + grace before stream time) leave the outer store as
   ``joiner(value, None)`` (or ``(None, value)``), with their own timestamps;
4. the record joins every record of the other side's window store with the same key and a
   time in ``[t - before, t + after]`` (seen from the left; mirrored for the right), each
   result timestamped with the later of the two; a match removes the other record from
   the outer store;
5. an unmatched record of an outer side goes to the outer store to wait for its window to
   close, or straight out if its window has closed already;
6. the record is kept in its own side's window store (duplicates retained) for the
   other side's later records. A record too old for its store (before its retention) is
   not kept; if it also joined nothing it is counted as dropped (late).
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterator

from streamer.processors.api import Processor, ProcessorContext
from streamer.record import Record
from streamer.serde import Serde
from streamer.state.timestamped import decode, encode
from streamer.state.window_store import WindowStore
from streamer.state.write_cache import WriteCache
from streamer.windows.join_windows import JoinWindows

Joiner = Callable[[Any, Any], Any]
#: Stream time before the first record.
NO_TIME = -1
#: Outer-store key: record time (8 bytes big-endian), side (left 1, right 0), key bytes: Kafka
#: Streams' TimestampedKeyAndJoinSide layout, so records come out oldest first, right before left.
_TIME = struct.Struct(">q")
_LENGTH = struct.Struct(">I")
_LEFT_BYTE, _RIGHT_BYTE = b"\x01", b"\x00"
#: min_time after a scan that found nothing: no check is needed until a record is stored.
_NOTHING_STORED = 2**62


class LeftRecord(Record):
    """A record of the join's left input."""

    __slots__ = ()


class RightRecord(Record):
    """A record of the join's right input."""

    __slots__ = ()


class JoinInput(Processor):
    """Marks each record of one join input with its side (a copy: a self-join sees each record twice)."""

    def __init__(self, name: str, left: bool) -> None:
        super().__init__(name)
        self.marked = LeftRecord if left else RightRecord

    def process(self, records: list[Record]) -> list[Record]:
        marked = self.marked
        return [marked(r.key, r.value, r.timestamp, r.headers, r.offset) for r in records]


class _Side:
    """One side's view of the join: its store, the other's, its window bounds and serdes."""

    __slots__ = ("own", "other", "before", "after", "outer", "serde", "other_serde", "side_byte", "other_byte",
                 "left")

    def __init__(self, own: WindowStore, other: WindowStore, before: int, after: int, outer: bool,
                 serde: Serde, other_serde: Serde, left: bool) -> None:
        self.own, self.other = own, other
        self.before, self.after = before, after
        self.outer = outer
        self.serde, self.other_serde = serde, other_serde
        self.left = left
        self.side_byte, self.other_byte = (_LEFT_BYTE, _RIGHT_BYTE) if left else (_RIGHT_BYTE, _LEFT_BYTE)


class StreamStreamJoin(Processor):
    """Both sides of a windowed join of two streams; see the module docstring for the steps.

    ``kind``: "inner", "left" (the left side's unmatched records come out too) or "outer"
    (both sides'). ``outer_store`` (left and outer joins) holds unmatched records, keyed
    as Kafka Streams' shared outer-join store, with a list of the values of one key, side
    and time.
    """

    def __init__(self, name: str, key_serde: Serde, left_serde: Serde, right_serde: Serde, windows: JoinWindows,
                 joiner: Joiner, kind: str, left_store: str, right_store: str, outer_store: str | None) -> None:
        super().__init__(name)
        self.key_serde = key_serde
        self.left_serde, self.right_serde = left_serde, right_serde
        self.windows = windows
        self.joiner = joiner
        self.kind = kind
        self.store_names = (left_store, right_store)
        self.outer_store_name = outer_store
        self.outer_store: WriteCache | None = None
        self.stream_time = NO_TIME
        self._saved_time = NO_TIME
        #: lowest time in the outer store as far as known (Kafka Streams' minTime); None: unknown, look
        self.min_time: int | None = None
        self._left: _Side
        self._right: _Side
        self._context: ProcessorContext

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self._context = context
        retention = self.windows.retention_ms
        left, right = (WindowStore(context.get_store(name), retention, retain_duplicates=True)
                       for name in self.store_names)
        before, after = self.windows.before_ms, self.windows.after_ms
        self._left = _Side(left, right, before, after, self.kind != "inner", self.left_serde, self.right_serde, True)
        self._right = _Side(right, left, after, before, self.kind == "outer", self.right_serde, self.left_serde,
                            False)
        if self.outer_store_name is not None:
            self.outer_store = context.get_store(self.outer_store_name)
        saved = context.processor_metadata(self.name)
        self.stream_time = self._saved_time = NO_TIME if saved is None else saved

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        left, right = self._left, self._right
        try:
            for record in records:
                mark = len(out)
                try:
                    self._join(record, left if type(record) is LeftRecord else right, out)
                except Exception as error:
                    del out[mark:]
                    self._context.record_error(self.name, record, error)
        finally:
            if self.stream_time != self._saved_time:
                self._context.set_processor_metadata(self.name, self.stream_time)
                self._saved_time = self.stream_time
        return out

    def _result(self, side: _Side, value: Any, other: Any) -> Any:
        return self.joiner(value, other) if side.left else self.joiner(other, value)

    def _join(self, record: Record, side: _Side, out: list[Record]) -> None:
        timestamp, value = record.timestamp, record.value
        if timestamp > self.stream_time:
            self.stream_time = timestamp
        if record.key is None or value is None:
            if side.outer and value is not None:
                out.append(Record(None, self._result(side, value, None), timestamp, record.headers, record.offset))
            else:
                self._context.record_dropped(self.name, record, "null key" if record.key is None else "null value")
            return
        key = self.key_serde.serialize(record.key) or b""
        if self.outer_store is not None and timestamp == self.stream_time:
            self._emit_closed(record, side.after, out)
        time_to = max(0, timestamp + side.after)
        matched = False
        outer_store, other_byte, load_other = self.outer_store, side.other_byte, side.other_serde.deserialize
        for other_time, data in side.other.fetch(key, max(0, timestamp - side.before), time_to):
            matched = True
            if outer_store is not None:
                waiting = _TIME.pack(other_time) + other_byte + key
                if outer_store.get(waiting) is not None:
                    outer_store.delete(waiting)
            other = load_other(decode(data)[1])
            out.append(Record(record.key, self._result(side, value, other), max(timestamp, other_time),
                              record.headers, record.offset))
        value_bytes = side.serde.serialize(value) or b""
        if side.outer and not matched:
            matched = True
            if outer_store is None or time_to < self.stream_time:
                out.append(Record(record.key, self._result(side, value, None), timestamp, record.headers,
                                  record.offset))
            else:
                self._hold(outer_store, _TIME.pack(timestamp) + side.side_byte + key, value_bytes, timestamp)
        own = side.own
        if timestamp <= own.observed_time - own.retention_ms:
            if not matched:
                self._context.record_dropped(
                    self.name, record,
                    f"late: timestamp {timestamp} is older than the join window store keeps (stream time "
                    f"{self.stream_time}, {self.windows}) and it joined no record")
            return
        own.put(key, timestamp, encode(timestamp, value_bytes))

    def _hold(self, store: WriteCache, waiting: bytes, value_bytes: bytes, timestamp: int) -> None:
        """Add an unmatched record to the outer store (appended to the values of its key, side and time)."""
        if self.min_time is not None:
            self.min_time = min(self.min_time, timestamp)
        entry = _LENGTH.pack(len(value_bytes)) + value_bytes
        held = store.get(waiting)
        store.put(waiting, entry if held is None else held + entry)

    def _emit_closed(self, trigger: Record, after: int, out: list[Record]) -> None:
        """Emit and remove the outer store's records whose window has closed, oldest first.

        As Kafka Streams: skipped while the lowest known time cannot have closed yet; the
        scan stops once it reaches open windows of both sides; the lowest known time is
        then the time of the last entry looked at.
        """
        store, grace, now = self.outer_store, self.windows.grace_ms, self.stream_time
        assert store is not None
        if self.min_time is not None and self.min_time + after + grace >= now:
            return
        self.min_time = _NOTHING_STORED
        left_open = right_open = False
        before, after_left = self.windows.before_ms, self.windows.after_ms
        load_key, load_left, load_right = self.key_serde.deserialize, self.left_serde.deserialize, \
            self.right_serde.deserialize
        emitted: list[bytes] = []
        for waiting, held in store.range(None, None):
            timestamp = _TIME.unpack_from(waiting)[0]
            self.min_time = timestamp
            if left_open and right_open:
                break
            is_left = waiting[8:9] == _LEFT_BYTE
            if timestamp + (after_left if is_left else before) + grace >= now:
                if is_left:
                    left_open = True
                else:
                    right_open = True
                continue
            key = load_key(waiting[9:])
            for value_bytes in _values(held):
                result = (self.joiner(load_left(value_bytes), None) if is_left
                          else self.joiner(None, load_right(value_bytes)))
                out.append(Record(key, result, timestamp, trigger.headers, trigger.offset))
            emitted.append(waiting)
        for waiting in emitted:
            store.delete(waiting)


def _values(held: bytes) -> Iterator[bytes]:
    """The values of one outer-store entry, in the order they were held."""
    at, end = 0, len(held)
    while at < end:
        (size,) = _LENGTH.unpack_from(held, at)
        at += _LENGTH.size
        yield held[at:at + size]
        at += size
