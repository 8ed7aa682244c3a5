"""Suppression until a window closes (Kafka Streams' KTableSuppressProcessor with untilWindowCloses).

Each windowed update replaces the key's entry in a time-ordered buffer, filed under the
window's end. Once the processor's stream time (the highest timestamp of the updates it
received) reaches a window's end plus the aggregation's grace period, the window can no
longer change: its latest update is forwarded, once, and leaves the buffer. Deletions
are dropped instead of forwarded, as in Kafka Streams' final-results suppression.

Buffer value layout: the update's timestamp (8 bytes, big-endian signed), then ``0x01``
and the new value's bytes; a deletion is the timestamp alone.
"""

from __future__ import annotations

from typing import Any

from streamer.processors.change import Change
from streamer.processors.window_base import WindowedProcessor, trigger_context
from streamer.record import Record
from streamer.serde import Serde
from streamer.state.time_ordered_buffer import TimeOrderedBuffer

_TIME = 8
_VALUE = b"\x01"


class SuppressUntilClose(WindowedProcessor):
    """Holds a windowed table's updates in buffer ``buffer_name`` until ``end + duration_ms <= stream time``.

    ``key_serde`` is the table's windowed key serde: the buffer orders a window's
    entries by its bytes, as Kafka Streams orders by the serialized windowed key.
    ``duration_ms`` is the grace period (sessions: gap plus grace), plus 1 ms for windows
    whose end is inclusive (sliding, sessions), so a window leaves the buffer exactly when
    its aggregation can no longer update it.
    """

    def __init__(self, name: str, buffer_name: str, key_serde: Serde, value_serde: Serde, duration_ms: int, *,
                 idle_ms: int | None = None) -> None:
        super().__init__(name, buffer_name, key_serde, idle_ms)
        self.buffer_name = buffer_name
        self.value_serde = value_serde
        self.duration_ms = duration_ms
        self.buffer: TimeOrderedBuffer

    def init(self, context: Any) -> None:
        super().init(context)
        self.buffer = TimeOrderedBuffer(context.get_store(self.buffer_name))

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        self.input_arrived()
        buffer, dump = self.buffer, self.value_serde.serialize
        try:
            for record, key in zip(records, self.encoded_keys(records)):
                if key is None:
                    continue
                change = record.value
                try:
                    stamp = record.timestamp.to_bytes(_TIME, "big", signed=True)
                    data = stamp if change.new is None else stamp + _VALUE + (dump(change.new) or b"")
                except Exception as error:
                    self.context.record_error(self.name, record, error)
                    continue
                buffer.put(record.key.end, key, data)
                if record.timestamp > self.observed_time:
                    self.observed_time = record.timestamp
                out.extend(self.emit_closed(record))
        finally:
            self.save_time()
        return out

    def emit_closed(self, trigger: Record | None) -> list[Record]:
        """Forward and drop the buffered updates of windows that ended at least ``duration_ms`` ago."""
        load_key, load = self.key_serde.deserialize, self.value_serde.deserialize
        offset = trigger_context(trigger)[1]
        out: list[Record] = []
        for _end, key, data in self.buffer.evict(self.observed_time - self.duration_ms):
            if len(data) > _TIME:
                timestamp = int.from_bytes(data[:_TIME], "big", signed=True)
                out.append(Record(load_key(key), Change(load(data[_TIME + 1:]), None), timestamp, None, offset))
        return out
