"""Aggregation over tumbling and hopping time windows (Kafka Streams' KStreamWindowAggregate).

Each record updates every window ``[start, start + size)`` that contains it and is still
open: a window closes once the processor's stream time reaches its end plus the grace
period. A record whose windows are all closed is late and dropped. Results are windowed
table updates, keyed ``Windowed(key, start, end)`` with value ``Change(new, old)`` and the
timestamp of the window's latest record.
"""

from __future__ import annotations

from typing import Any, Callable

from streamer.processors.change import Change
from streamer.processors.window_base import WindowedProcessor, trigger_context
from streamer.record import Record
from streamer.serde import Serde
from streamer.state.time_ordered_buffer import TimeOrderedBuffer
from streamer.state.timestamped import decode, encode
from streamer.state.window_store import WindowStore
from streamer.windows.windowed import Windowed
from streamer.windows.windows import TimeWindows

Initializer = Callable[[], Any]
Aggregator = Callable[[Any, Any, Any], Any]
#: (aggregate, timestamp) of one window
Entry = tuple[Any, int]


class WindowAggregate(WindowedProcessor):
    """``aggregator(key, value, aggregate)`` per record and open window, from ``initializer()``.

    With ``emit_on_close`` nothing is forwarded on update; each window's final result goes
    out once, when it closes, in order of window start and then key bytes (as Kafka
    Streams' time-ordered emit-on-close store). ``buffer_name`` is the buffer of windows
    waiting to close. Within a batch, aggregates stay objects and reach the store once
    per window at the batch's end.
    """

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde, windows: TimeWindows,
                 retention_ms: int, initializer: Initializer, aggregator: Aggregator, *,
                 buffer_name: str | None = None, idle_ms: int | None = None) -> None:
        super().__init__(name, store_name, key_serde, idle_ms)
        self.store_name = store_name
        self.value_serde = value_serde
        self.windows = windows
        self.retention_ms = retention_ms
        self.initializer = initializer
        self.aggregator = aggregator
        self.buffer_name = buffer_name
        self.store: WindowStore
        self.finals: TimeOrderedBuffer | None = None
        #: (key bytes, window start) -> entry, for windows updated in the current batch
        self._pending: dict[tuple[bytes, int], Entry] = {}

    def init(self, context: Any) -> None:
        super().init(context)
        self.store = WindowStore(context.get_store(self.store_name), self.retention_ms)
        if self.buffer_name is not None:
            self.finals = TimeOrderedBuffer(context.get_store(self.buffer_name))

    def _entry(self, key: bytes, start: int) -> Entry | None:
        slot = (key, start)
        if slot in self._pending:
            return self._pending[slot]
        data = self.store.get(key, start)
        if data is None:
            return None
        timestamp, value = decode(data)
        return self.value_serde.deserialize(value), timestamp

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        emit = out.append
        self.input_arrived()
        finals = self.finals
        size, grace = self.windows.size_ms, self.windows.grace_ms
        window_starts = self.windows.window_starts
        initializer, aggregator = self.initializer, self.aggregator
        pending = self._pending
        try:
            for record, key in zip(records, self.encoded_keys(records)):
                if key is None:
                    continue
                timestamp = record.timestamp
                if timestamp > self.observed_time:
                    self.observed_time = timestamp
                    if finals is not None:
                        out.extend(self.emit_closed(record))
                close_time = self.observed_time - grace
                updated = False
                for start in window_starts(timestamp):
                    if start + size <= close_time:
                        continue
                    updated = True
                    try:
                        entry = self._entry(key, start)
                        created = entry is None or entry[0] is None
                        if created:
                            old, new_time = initializer(), timestamp
                        else:
                            old, new_time = entry[0], max(timestamp, entry[1])  # type: ignore[index]
                        new = aggregator(record.key, record.value, old)
                    except Exception as error:
                        self.context.record_error(self.name, record, error)
                        break
                    pending[(key, start)] = (new, new_time)
                    if finals is None:
                        emit(Record(Windowed(record.key, start, start + size), Change(new, old), new_time,
                                    record.headers, record.offset))
                    elif created:
                        finals.put(start, key, b"")
                if not updated:
                    self.context.record_dropped(
                        self.name, record,
                        f"late: every window of timestamp {timestamp} closed (stream time {self.observed_time}, "
                        f"window size {size} ms, grace {grace} ms)",
                    )
        finally:
            self._flush()
            self.save_time()
        return out

    def _flush(self) -> None:
        store, dump = self.store, self.value_serde.serialize
        for (key, start), (value, timestamp) in self._pending.items():
            store.put(key, start, None if value is None else encode(timestamp, dump(value) or b""))
        self._pending.clear()

    def emit_closed(self, trigger: Record | None) -> list[Record]:
        """Windows whose end plus grace is at or before stream time, oldest start first."""
        if self.finals is None:
            return []
        size = self.windows.size_ms
        due = self.finals.evict(self.observed_time - self.windows.grace_ms - size)
        headers, offset = trigger_context(trigger)
        load_key = self.key_serde.deserialize
        out: list[Record] = []
        for start, key, _ in due:
            entry = self._entry(key, start)
            if entry is not None and entry[0] is not None:
                out.append(Record(Windowed(load_key(key), start, start + size), Change(entry[0], None), entry[1],
                                  headers, offset))
        return out
