"""Table operations: materializing a changelog stream, and transforming table updates."""

from __future__ import annotations

from typing import Any, Callable

from streamer.processors.aggregate import StoreProcessor
from streamer.processors.api import Processor
from streamer.processors.change import Change
from streamer.record import Record
from streamer.serde import serialize_required
from streamer.state.timestamped import encode


class TableSource(StoreProcessor):
    """Keeps the latest value per key with its record's timestamp (None deletes); forwards ``Change(new, old)``.

    Every record with a key is forwarded, a tombstone for a key never seen included, as
    Kafka Streams' KTableSource does; the update keeps the record's own timestamp.
    """

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        store, load = self.store, self._load
        value_serde, what = self.value_serde, f"value of table store {self.store_name!r}"
        for record, key_bytes in zip(records, self.encoded_keys(records)):
            if key_bytes is None:
                continue
            try:
                entry = load(key_bytes)
                if record.value is None:
                    store.delete(key_bytes)
                else:
                    store.put(key_bytes, encode(record.timestamp, serialize_required(value_serde, record.value, what)))
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            old = None if entry is None else entry[0]
            out.append(record.with_value(Change(record.value, old)))
        return out


class TableFilter(Processor):
    """A table of the rows for which ``predicate(key, value)`` holds; a row that stops matching is deleted.

    ``send_old_values`` is Kafka Streams' flag of the same name: whether the parent
    table sends old values (it does when it is materialized, such as an aggregation or
    a named table, or when a downstream grouping or suppression asks for them). With
    them, an update that neither matched before nor matches now is dropped; without
    them the filter cannot tell, so every update that does not match is forwarded as a
    delete. The old value is passed on either way; downstream only reads it where
    Kafka Streams would have it.
    """

    def __init__(self, name: str, predicate: Callable[[Any, Any], Any], negate: bool = False,
                 send_old_values: bool = False) -> None:
        super().__init__(name)
        self.predicate = predicate
        self.negate = negate
        self.send_old_values = send_old_values

    def _keep(self, key: Any, value: Any) -> Any:
        return None if value is None or (not self.predicate(key, value)) is not self.negate else value

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        skip_empty = self.send_old_values
        for record in records:
            change = record.value
            try:
                new, old = self._keep(record.key, change.new), self._keep(record.key, change.old)
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            if new is not None or old is not None or not skip_empty:
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

    A row that stays in its group becomes one record carrying its old and new value,
    so the aggregate applies both at once and emits one net change (Kafka Streams
    since 3.5, KIP-904). A row that changes group becomes two: the old value's (to
    subtract from its old group) first, then the new value's. A selected group or
    value of None is not forwarded.
    """

    def __init__(self, name: str, selector: Callable[[Any, Any], tuple[Any, Any]]) -> None:
        super().__init__(name)
        self.selector = selector

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        emit = out.append
        selector = self.selector
        for record in records:
            change = record.value
            try:
                new_group, new = (None, None) if change.new is None else selector(record.key, change.new)
                old_group, old = (None, None) if change.old is None else selector(record.key, change.old)
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            has_new = new_group is not None and new is not None
            has_old = old_group is not None and old is not None
            if has_new and has_old and _same_group(old_group, new_group):
                emit(Record(new_group, Change(new, old), record.timestamp, record.headers, record.offset))
                continue
            if has_old:
                emit(Record(old_group, Change(None, old), record.timestamp, record.headers, record.offset))
            if has_new:
                emit(Record(new_group, Change(new, None), record.timestamp, record.headers, record.offset))
        return out


def _same_group(a: Any, b: Any) -> bool:
    """Equal and of one type: 1 == 1.0 == True, but a serde may write them as different keys."""
    return a.__class__ is b.__class__ and a == b
