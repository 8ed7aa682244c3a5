"""Aggregations: per-key state in a store, updated in input order, emitted on every update."""

from __future__ import annotations

from typing import Any, Callable

from streamer.processors.api import Processor
from streamer.processors.change import Change
from streamer.record import Record
from streamer.serde import Serde, serialize_many

Initializer = Callable[[], Any]
Adder = Callable[[Any, Any, Any], Any]


class StoreProcessor(Processor):
    """A processor that keeps typed values in one key-value store of its task."""

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde) -> None:
        super().__init__(name)
        self.store_name = store_name
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.store: Any = None

    def init(self, context: Any) -> None:
        super().init(context)
        self.store = context.get_store(self.store_name)


class StreamAggregate(StoreProcessor):
    """``aggregator(key, value, aggregate)`` folds each record into its key's aggregate.

    Records with a None key or value are skipped, as Kafka Streams does. Emits
    ``Change(new, old)`` per record so the result is a table.
    """

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde,
                 initializer: Initializer | None, aggregator: Adder) -> None:
        super().__init__(name, store_name, key_serde, value_serde)
        self.initializer = initializer
        self.aggregator = aggregator

    def process(self, records: list[Record]) -> list[Record]:
        """Aggregates live as objects for the batch and reach the store once per key, at its end.

        Keys are told apart by their serialized bytes, the identity the store and the
        changelog use (1, 1.0 and True are one Python dict key but three JSON keys).
        """
        out: list[Record] = []
        emit = out.append
        store = self.store
        load = self.value_serde.deserialize
        initializer, aggregator = self.initializer, self.aggregator
        current: dict[bytes, Any] = {}  # serialized key -> aggregate, for keys updated in this batch
        try:
            for record, encoded in zip(records, self._encoded_keys(records)):
                value = record.value
                if encoded is None or value is None:
                    continue
                try:
                    if encoded in current:
                        old = current[encoded]
                    else:
                        stored = store.get(encoded)
                        old = None if stored is None else load(stored)
                    if old is None and initializer is None:
                        new = value  # reduce: the first value is the aggregate
                    else:
                        new = aggregator(record.key, value, initializer() if old is None else old)
                except Exception as error:
                    self.context.record_error(self.name, record, error)
                    continue
                current[encoded] = new
                emit(Record(record.key, Change(new, old), record.timestamp, record.headers, record.offset))
        finally:
            dump = self.value_serde.serialize
            for encoded, aggregate in current.items():
                store.put(encoded, dump(aggregate))
        return out

    def _encoded_keys(self, records: list[Record]) -> list[bytes | None]:
        """Serialized keys (None for a None key, or one that failed and went to the error handler)."""
        try:
            return serialize_many(self.key_serde, [r.key for r in records])
        except Exception:
            return [self._encoded_key(record) for record in records]

    def _encoded_key(self, record: Record) -> bytes | None:
        try:
            return self.key_serde.serialize(record.key)
        except Exception as error:
            self.context.record_error(self.name, record, error)
            return None


class TableAggregate(StoreProcessor):
    """Aggregates a grouped table: ``subtractor`` takes a key's old value out, ``adder`` adds the new.

    Input values are halves of changes (see ChangeSerde): ``Change(None, old)`` to
    subtract, ``Change(new, None)`` to add. A group whose aggregate becomes None is deleted.
    """

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde,
                 initializer: Initializer | None, adder: Adder, subtractor: Adder) -> None:
        super().__init__(name, store_name, key_serde, value_serde)
        self.initializer = initializer
        self.adder = adder
        self.subtractor = subtractor

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        store = self.store
        dump_key, dump, load = self.key_serde.serialize, self.value_serde.serialize, self.value_serde.deserialize
        for record in records:
            change = record.value
            if record.key is None or change is None:
                continue
            try:
                key_bytes = dump_key(record.key)
                stored = store.get(key_bytes)
                old = None if stored is None else load(stored)
                if change.old is not None:
                    new = None if old is None else self.subtractor(record.key, change.old, old)
                elif old is None and self.initializer is None:
                    new = change.new
                else:
                    new = self.adder(record.key, change.new, self.initializer() if old is None else old)
                if new is None:
                    store.delete(key_bytes)
                else:
                    store.put(key_bytes, dump(new))
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            out.append(Record(record.key, Change(new, old), record.timestamp, record.headers, record.offset))
        return out
