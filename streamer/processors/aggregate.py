"""Aggregations: per-key state in a store, updated in input order, emitted on every update.

Their stores are timestamped (``streamer.state.timestamped``): each aggregate keeps the
latest timestamp of the records that built it, and its updates carry that timestamp
(Kafka Streams' KStreamAggregate, KStreamReduce, KTableAggregate and KTableReduce).
"""

from __future__ import annotations

from typing import Any, Callable

from streamer.processors.keyed import KeyedProcessor
from streamer.processors.change import Change
from streamer.record import Record
from streamer.serde import Serde, serialize_many
from streamer.state.timestamped import decode, encode

Initializer = Callable[[], Any]
Adder = Callable[[Any, Any, Any], Any]
#: an aggregate (None: none) and its timestamp, as a batch holds it until the store gets it
Entry = tuple[Any, int]


class StoreProcessor(KeyedProcessor):
    """A processor that keeps typed, timestamped values in one key-value store of its task."""

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde) -> None:
        super().__init__(name, key_serde)
        self.store_name = store_name
        self.value_serde = value_serde
        self.store: Any = None

    def init(self, context: Any) -> None:
        super().init(context)
        self.store = context.get_store(self.store_name)

    def _load(self, key_bytes: bytes) -> Entry | None:
        """The stored (value, timestamp) of a key, or None."""
        stored = self.store.get(key_bytes)
        if stored is None:
            return None
        timestamp, data = decode(stored)
        return self.value_serde.deserialize(data), timestamp

    def _write(self, entries: dict[bytes, Entry]) -> None:
        """A batch's final entries reach the store once per key; a None value deletes the key."""
        store = self.store
        values = serialize_many(self.value_serde, [value for value, _ in entries.values()])
        for (key_bytes, (_, timestamp)), data in zip(entries.items(), values):
            if data is None:
                store.delete(key_bytes)
            else:
                store.put(key_bytes, encode(timestamp, data))


class StreamAggregate(StoreProcessor):
    """``aggregator(key, value, aggregate)`` folds each record into its key's aggregate.

    Records with a None key or value are skipped, as Kafka Streams does. Emits
    ``Change(new, old)`` per record so the result is a table; ``old`` of a key's first
    update is the initializer's value (None for reduce), as Kafka Streams sends it.
    The update's timestamp is the later of the record's and the previous aggregate's.
    """

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde,
                 initializer: Initializer | None, aggregator: Adder) -> None:
        super().__init__(name, store_name, key_serde, value_serde)
        self.initializer = initializer
        self.aggregator = aggregator

    def process(self, records: list[Record]) -> list[Record]:
        """Aggregates live as objects for the batch and reach the store once per key, at its end."""
        out: list[Record] = []
        emit = out.append
        get, load = self.store.get, self.value_serde.deserialize
        initializer, aggregator = self.initializer, self.aggregator
        current: dict[bytes, Entry] = {}  # serialized key -> (aggregate, timestamp), for keys updated in this batch
        lookup = current.get
        try:
            for record, encoded in zip(records, self.encoded_keys(records)):
                value = record.value
                if encoded is None or value is None:
                    continue
                timestamp = record.timestamp
                try:
                    entry = lookup(encoded)
                    if entry is None:
                        stored = get(encoded)
                        if stored is not None:
                            previous, data = decode(stored)
                            entry = (load(data), previous)
                    if entry is not None and entry[0] is not None:
                        old, previous = entry
                        new = aggregator(record.key, value, old)
                        if previous > timestamp:
                            timestamp = previous
                    elif initializer is None:
                        old, new = None, value  # reduce: the first value is the aggregate
                    else:
                        old = initializer()
                        new = aggregator(record.key, value, old)
                except Exception as error:
                    self.context.record_error(self.name, record, error)
                    continue
                current[encoded] = (new, timestamp)
                emit(Record(record.key, Change(new, old), timestamp, record.headers, record.offset))
        finally:
            self._write(current)
        return out


class TableAggregate(StoreProcessor):
    """Aggregates a grouped table: ``subtractor`` takes a row's old value out, ``adder`` adds the new.

    An input change (see ChangeSerde) carries the old value, the new value, or both
    when the row stayed in its group: then both apply in one step and one net change
    is emitted. A group whose aggregate becomes None is deleted. Without an
    ``initializer`` (reduce) a group's first value is its aggregate. The update's
    timestamp is the later of the record's and the previous aggregate's.
    """

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde,
                 initializer: Initializer | None, adder: Adder, subtractor: Adder) -> None:
        super().__init__(name, store_name, key_serde, value_serde)
        self.initializer = initializer
        self.adder = adder
        self.subtractor = subtractor

    def process(self, records: list[Record]) -> list[Record]:
        """Like StreamAggregate: aggregates stay objects for the batch, one store write per key."""
        out: list[Record] = []
        load = self._load
        initializer, adder, subtractor = self.initializer, self.adder, self.subtractor
        current: dict[bytes, Entry] = {}
        try:
            for record, encoded in zip(records, self.encoded_keys(records)):
                change = record.value
                if encoded is None or change is None:
                    continue
                key, timestamp = record.key, record.timestamp
                try:
                    entry = current[encoded] if encoded in current else load(encoded)
                    old = None if entry is None else entry[0]
                    aggregate = old
                    if change.old is not None and old is not None:
                        aggregate = subtractor(key, change.old, old)
                    if change.new is not None:
                        if aggregate is not None:
                            aggregate = adder(key, change.new, aggregate)
                        elif initializer is None:
                            aggregate = change.new
                        else:
                            aggregate = adder(key, change.new, initializer())
                except Exception as error:
                    self.context.record_error(self.name, record, error)
                    continue
                if old is not None and entry is not None and entry[1] > timestamp:
                    timestamp = entry[1]
                current[encoded] = (aggregate, timestamp)
                out.append(Record(key, Change(aggregate, old), timestamp, record.headers, record.offset))
        finally:
            self._write(current)
        return out
