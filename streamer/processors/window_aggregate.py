"""Aggregation over tumbling and hopping time windows (Kafka Streams' KStreamWindowAggregate).

Each record updates every window ``[start, start + size)`` that contains it and is still
open: a window closes once the processor's stream time reaches its end plus the grace
period. A record whose windows are all closed is late and dropped. Results are windowed
table updates, keyed ``Windowed(key, start, end)`` with value ``Change(new, old)`` and the
timestamp of the window's latest record.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from streamer.processors.change import Change
from streamer.processors.window_base import Aggregator, Initializer, WindowedAggregation, trigger_context
from streamer.record import Record
from streamer.serde import Serde, deserialize_many, serialize_many
from streamer.state.timestamped import decode, encode
from streamer.state.window_store import WindowStore
from streamer.state.write_cache import WriteCache
from streamer.windows.windowed import Windowed
from streamer.windows.windows import TimeWindows

#: (aggregate, timestamp) of one window
Entry = tuple[Any, int]


class WindowAggregate(WindowedAggregation):
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
        super().__init__(name, store_name, key_serde, value_serde, retention_ms, initializer, aggregator,
                         buffer_name, idle_ms)
        self.windows = windows
        self.store: WindowStore
        #: (key bytes, window start) -> entry, for windows updated in the current batch
        self._pending: dict[tuple[bytes, int], Entry] = {}

    def open_store(self, cache: WriteCache) -> None:
        self.store = WindowStore(cache, self.retention_ms)

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        emit = out.append
        self.input_arrived()
        finals = self.finals
        size, grace = self.windows.size_ms, self.windows.grace_ms
        initializer, aggregator = self.initializer, self.aggregator
        pending = self._pending
        keys = self.encoded_keys(records)
        window_starts = self.windows.window_starts
        starts = [() if key is None else window_starts(record.timestamp) for record, key in zip(records, keys)]
        loaded = self._load(keys, starts)
        #: windows this batch created, for the buffer of windows waiting to close
        created_windows: list[tuple[int, bytes, bytes]] = []
        #: stream time after each record that advanced it, and that record (emit-on-close)
        advances: list[int] = []
        triggers: list[Record | None] = []
        observed = self.observed_time
        try:
            for record, key, record_starts in zip(records, keys, starts):
                if key is None:
                    continue
                timestamp = record.timestamp
                if timestamp > observed:
                    self.observed_time = observed = timestamp
                    if finals is not None:
                        advances.append(timestamp)
                        triggers.append(record)
                close_time = observed - grace
                updated = False
                for start in record_starts:
                    if start + size <= close_time:
                        continue
                    updated = True
                    slot = (key, start)
                    try:
                        entry = pending[slot] if slot in pending else loaded.get(slot)
                        created = entry is None or entry[0] is None
                        if created:
                            old, new_time = initializer(), timestamp
                        else:
                            old, new_time = entry  # type: ignore[misc]
                            if timestamp > new_time:
                                new_time = timestamp
                        new = aggregator(record.key, record.value, old)
                    except Exception as error:
                        self.context.record_error(self.name, record, error)
                        break
                    pending[slot] = (new, new_time)
                    if finals is None:
                        emit(Record(Windowed(record.key, start, start + size), Change(new, old), new_time,
                                    record.headers, record.offset))
                    elif created:
                        created_windows.append((start, key, b""))
                if not updated:
                    self.context.record_dropped(
                        self.name, record,
                        f"late: every window of timestamp {timestamp} closed (stream time {observed}, "
                        f"window size {size} ms, grace {grace} ms)",
                    )
            if finals is not None:
                finals.put_many(created_windows)
                out = self._finals(advances, triggers)
        finally:
            self._flush()
            self.save_time()
        return out

    def _load(self, keys: list[bytes | None], starts: list[range | tuple[()]]) -> dict[tuple[bytes, int], Entry]:
        """The stored entries of the windows a batch may update (``starts`` of each record's key), read in
        one pass. Windows already closed when the batch starts stay closed through it, so they are not read.
        """
        pending = self._pending
        low = self.observed_time - self.windows.grace_ms - self.windows.size_ms
        wanted: dict[tuple[bytes, int], None] = {}
        for key, record_starts in zip(keys, starts):
            for start in record_starts:
                if start > low and (key, start) not in pending:
                    wanted[(key, start)] = None  # type: ignore[index]
        return self._stored(list(wanted))

    def _stored(self, slots: list[tuple[bytes, int]]) -> dict[tuple[bytes, int], Entry]:
        """The store's entries of the windows that have one, their values deserialized in one call."""
        found = [(slot, decode(data)) for slot, data in zip(slots, self.store.get_many(slots)) if data is not None]
        values = deserialize_many(self.value_serde, [data for _, (_, data) in found])
        return {slot: (value, timestamp) for (slot, (timestamp, _)), value in zip(found, values)}

    def _flush(self) -> None:
        """The batch's windows reach the store once each, their values serialized in one call."""
        pending = self._pending
        values = serialize_many(self.value_serde, [value for value, _ in pending.values()])
        self.store.put_many([
            (key, start, None if value is None else encode(timestamp, data or b""))
            for ((key, start), (value, timestamp)), data in zip(pending.items(), values)
        ])
        pending.clear()

    def emit_closed(self, trigger: Record | None) -> list[Record]:
        """Windows whose end plus grace is at or before stream time, oldest start first."""
        return self._finals([self.observed_time], [trigger])

    def _finals(self, advances: list[int], triggers: list[Record | None]) -> list[Record]:
        """Final results of the windows closed at the last of ``advances``, the stream times a batch
        reached (rising), each with the context of the trigger that first reached its close.

        One eviction per batch gives what one per advance would: a window closes at the first
        advance past its end plus grace, and windows leave the buffer by start, so by close.
        """
        if self.finals is None or not advances:
            return []
        size, grace = self.windows.size_ms, self.windows.grace_ms
        due = self.finals.evict(advances[-1] - grace - size)
        if not due:
            return []
        pending = self._pending
        stored = self._stored([(key, start) for start, key, _ in due if (key, start) not in pending])
        keys = deserialize_many(self.key_serde, [key for _, key, _ in due])
        out: list[Record] = []
        at = 0
        headers, offset = trigger_context(triggers[0])
        for (start, key_bytes, _), key in zip(due, keys):
            close = start + size + grace
            if advances[at] < close:
                at = bisect_left(advances, close, at)
                headers, offset = trigger_context(triggers[at])
            slot = (key_bytes, start)
            entry = pending[slot] if slot in pending else stored.get(slot)
            if entry is not None and entry[0] is not None:
                out.append(Record(Windowed(key, start, start + size), Change(entry[0], None), entry[1],
                                  headers, offset))
        return out
