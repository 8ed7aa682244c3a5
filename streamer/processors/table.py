"""Table operations: materializing a changelog stream, and transforming table updates."""

from __future__ import annotations

from typing import Any, Callable

from streamer.processors.aggregate import StoreProcessor
from streamer.processors.api import Processor
from streamer.processors.change import Change
from streamer.record import Record


class TableSource(StoreProcessor):
    """Keeps the latest value per key (None deletes) and forwards ``Change(new, old)``."""

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        store = self.store
        dump_key, dump, load = self.key_serde.serialize, self.value_serde.serialize, self.value_serde.deserialize
        for record in records:
            if record.key is None:
                continue
            try:
                key_bytes = dump_key(record.key)
                stored = store.get(key_bytes)
                if record.value is None:
                    store.delete(key_bytes)
                else:
                    store.put(key_bytes, dump(record.value))
                old = None if stored is None else load(stored)
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            if old is None and record.value is None:
                continue
            out.append(Record(record.key, Change(record.value, old), record.timestamp, record.headers, record.offset))
        return out


class TableFilter(Processor):
    """A table of the rows for which ``predicate(key, value)`` holds; a row that stops matching is deleted."""

    def __init__(self, name: str, predicate: Callable[[Any, Any], Any], negate: bool = False) -> None:
        super().__init__(name)
        self.predicate = predicate
        self.negate = negate

    def _keep(self, key: Any, value: Any) -> Any:
        return None if value is None or (not self.predicate(key, value)) is not self.negate else value

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        for record in records:
            change = record.value
            try:
                new, old = self._keep(record.key, change.new), self._keep(record.key, change.old)
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            if new is not None or old is not None:
                out.append(record.with_value(Change(new, old)))
        return out


class TableMapValues(Processor):
    """A table whose values are ``mapper(value)`` (or ``mapper(key, value)`` with ``with_key``)."""

    def __init__(self, name: str, mapper: Callable[..., Any], with_key: bool = False) -> None:
        super().__init__(name)
        self.mapper = mapper
        self.with_key = with_key

    def _map(self, key: Any, value: Any) -> Any:
        if value is None:
            return None
        return self.mapper(key, value) if self.with_key else self.mapper(value)

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        for record in records:
            change = record.value
            try:
                mapped = Change(self._map(record.key, change.new), self._map(record.key, change.old))
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            out.append(record.with_value(mapped))
        return out


class ToStream(Processor):
    """The stream of a table's updates: each record carries the key's new value (None = deleted)."""

    def process(self, records: list[Record]) -> list[Record]:
        return [Record(r.key, r.value.new, r.timestamp, r.headers, r.offset) for r in records]


class TableGroupBy(Processor):
    """Re-keys table updates for a grouped aggregation: ``selector(key, value) -> (group, value)``.

    Each update becomes up to two records, the old value's (to subtract from its old
    group) first and then the new value's (to add to its new group).
    """

    def __init__(self, name: str, selector: Callable[[Any, Any], tuple[Any, Any]]) -> None:
        super().__init__(name)
        self.selector = selector

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        selector = self.selector
        for record in records:
            change = record.value
            try:
                if change.old is not None:
                    group, value = selector(record.key, change.old)
                    out.append(Record(group, Change(None, value), record.timestamp, record.headers, record.offset))
                if change.new is not None:
                    group, value = selector(record.key, change.new)
                    out.append(Record(group, Change(value, None), record.timestamp, record.headers, record.offset))
            except Exception as error:
                self.context.record_error(self.name, record, error)
        return out
