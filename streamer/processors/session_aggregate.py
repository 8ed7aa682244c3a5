"""Aggregation over session windows (Kafka Streams' KStreamSessionWindowAggregate).

A key's records less than ``gap`` apart form one session ``[first, last]`` (both
inclusive). A record joins every session it is within ``gap`` of; sessions it bridges
are merged (``merger``) into one, and the old ones are deleted downstream. A session
closes once stream time passes its end plus gap plus grace; a record that would only
extend or start a closed session is late and dropped. Updates carry the session's end
as timestamp.
"""

from __future__ import annotations

from typing import Any, Callable

from streamer.processors.change import Change
from streamer.processors.window_base import Aggregator, Initializer, WindowedAggregation, trigger_context
from streamer.record import Record
from streamer.serde import Serde
from streamer.state.session_store import SessionStore
from streamer.state.write_cache import WriteCache
from streamer.windows.windowed import Windowed
from streamer.windows.windows import SessionWindows

Merger = Callable[[Any, Any, Any], Any]


def _final_key(key: bytes, start: int) -> bytes:
    """A session's entry in the buffer of sessions waiting to close: key bytes, then its start."""
    return key + start.to_bytes(8, "big", signed=True)


class SessionAggregate(WindowedAggregation):
    """``aggregator(key, value, aggregate)`` per record into its session; ``merger(key, a, b)`` joins sessions.

    With ``buffer_name`` (emit on window close) each session's final result goes out once,
    when it closes, by session end, then key bytes, then start.
    """

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde, windows: SessionWindows,
                 retention_ms: int, initializer: Initializer, aggregator: Aggregator, merger: Merger, *,
                 buffer_name: str | None = None, idle_ms: int | None = None) -> None:
        super().__init__(name, store_name, key_serde, value_serde, retention_ms, initializer, aggregator,
                         buffer_name, idle_ms)
        self.gap = windows.gap_ms
        self.grace = windows.grace_ms
        self.merger = merger
        self.store: SessionStore

    def open_store(self, cache: WriteCache) -> None:
        self.store = SessionStore(cache, self.retention_ms)

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        self.input_arrived()
        finals = self.finals
        gap, store = self.gap, self.store
        load, dump = self.value_serde.deserialize, self.value_serde.serialize
        try:
            for record, key in zip(records, self.encoded_keys(records)):
                if key is None:
                    continue
                t = record.timestamp
                if t > self.observed_time:
                    self.observed_time = t
                    out.extend(self.emit_closed(record))
                close_time = self.observed_time - self.grace - gap
                try:
                    aggregate = self.initializer()
                    start = end = t
                    merged = []
                    for session_start, session_end, data in list(store.find_sessions(key, t - gap, t + gap)):
                        value = load(data)
                        merged.append((session_start, session_end, value))
                        aggregate = self.merger(record.key, aggregate, value)
                        start, end = min(start, session_start), max(end, session_end)
                    if end < close_time:
                        self.context.record_dropped(
                            self.name, record,
                            f"late: session [{start},{end}] of timestamp {t} closed (stream time "
                            f"{self.observed_time}, gap {gap} ms, grace {self.grace} ms)",
                        )
                        continue
                    aggregate = self.aggregator(record.key, record.value, aggregate)
                except Exception as error:
                    self.context.record_error(self.name, record, error)
                    continue
                if (start, end) != (t, t):
                    for session_start, session_end, value in merged:
                        store.remove(key, session_start, session_end)
                        if finals is None:
                            out.append(Record(Windowed(record.key, session_start, session_end), Change(None, value),
                                              session_end, record.headers, record.offset))
                        else:
                            finals.delete(session_end, _final_key(key, session_start))
                store.put(key, start, end, None if aggregate is None else dump(aggregate) or b"")
                if finals is None:
                    out.append(Record(Windowed(record.key, start, end), Change(aggregate, None), end,
                                      record.headers, record.offset))
                else:
                    finals.put(end, _final_key(key, start), b"")
        finally:
            self.save_time()
        return out

    def emit_closed(self, trigger: Record | None) -> list[Record]:
        """Sessions that ended before stream time minus gap and grace."""
        if self.finals is None:
            return []
        due = self.finals.evict(self.observed_time - self.grace - self.gap - 1)
        headers, offset = trigger_context(trigger)
        load_key, load = self.key_serde.deserialize, self.value_serde.deserialize
        out: list[Record] = []
        for end, entry, _ in due:
            key, start = entry[:-8], int.from_bytes(entry[-8:], "big", signed=True)
            data = self.store.fetch_session(key, start, end)
            if data is not None:
                out.append(Record(Windowed(load_key(key), start, end), Change(load(data), None), end, headers, offset))
        return out
