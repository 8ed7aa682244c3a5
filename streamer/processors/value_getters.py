"""Reading a table's current row by key, whether or not the table has a store of its own.

A join reads the other side's row for each update it processes. Tables made by
``builder.table``, ``to_table`` and aggregations are materialized; tables derived from
them by ``filter``, ``map_values`` or a table-table join are not. Like Kafka Streams'
KTableValueGetterSupplier, a derived table answers a read by reading its materialized
ancestor's store and applying its own operation to what it finds, so no join needs a
copy of a derived table.

A ``GetterSpec`` describes the chain at compile time; ``build(context)`` makes the
task's getter once its stores are open. Getters work on whole batches: a batch of keys
is looked up with one read per distinct key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Literal

from streamer.processors.api import ProcessorContext
from streamer.record import Record
from streamer.serde import Serde, deserialize_many, serialize_many
from streamer.state.timestamped import decode

#: A row as a join sees it: (value, timestamp of the update that set it), or None when absent.
Row = tuple[Any, int] | None
Joiner = Callable[[Any, Any], Any]
JoinKind = Literal["inner", "left", "outer"]


def encode_keys(key_serde: Serde, records: list[Record], context: ProcessorContext,
                processor: str) -> list[bytes | None]:
    """Each record's key serialized for a lookup (None for a null key).

    Serialized in one call per batch; if that fails, key by key, and a key that cannot
    be serialized goes to the error handler (its record is then skipped by the caller:
    a None for a key that is not None).
    """
    try:
        return serialize_many(key_serde, [r.key for r in records])
    except Exception:
        encoded: list[bytes | None] = []
        for record in records:
            try:
                encoded.append(None if record.key is None else key_serde.serialize(record.key))
            except Exception as error:
                context.record_error(processor, record, error)
                encoded.append(None)
        return encoded


class ValueGetter(ABC):
    """The rows of one task's share of a table."""

    @abstractmethod
    def get_many(self, keys: list[Any], encoded: list[bytes]) -> list[Row]:
        """The rows of ``keys`` (``encoded``: the same keys serialized with the table's key serde)."""

    def get(self, key: Any, key_bytes: bytes) -> Row:
        return self.get_many([key], [key_bytes])[0]


class GetterSpec(ABC):
    """How every task builds the getter of one table."""

    @abstractmethod
    def build(self, context: ProcessorContext) -> ValueGetter: ...

    @property
    @abstractmethod
    def stores(self) -> tuple[str, ...]:
        """The stores the getter reads: the join that uses it must live in their task."""


@dataclass(frozen=True)
class StoreGetterSpec(GetterSpec):
    """A materialized table: its timestamped key-value store."""

    store: str
    value_serde: Serde

    def build(self, context: ProcessorContext) -> ValueGetter:
        return _StoreGetter(context.get_store(self.store), self.value_serde)

    @property
    def stores(self) -> tuple[str, ...]:
        return (self.store,)


class _StoreGetter(ValueGetter):
    def __init__(self, store: Any, value_serde: Serde) -> None:
        self.store = store
        self.value_serde = value_serde

    def get_many(self, keys: list[Any], encoded: list[bytes]) -> list[Row]:
        """One store read per key; the values found are deserialized in one call."""
        get = self.store.get
        stored = [get(key_bytes) for key_bytes in encoded]
        found = [decode(data) for data in stored if data is not None]
        values = iter(zip(deserialize_many(self.value_serde, [data for _, data in found]), (ts for ts, _ in found)))
        return [None if data is None else next(values) for data in stored]


@dataclass(frozen=True)
class FilterGetterSpec(GetterSpec):
    """``table.filter``: the parent's row if the predicate holds (KTableFilter's getter)."""

    parent: GetterSpec
    predicate: Callable[[Any, Any], Any]
    negate: bool = False

    def build(self, context: ProcessorContext) -> ValueGetter:
        return _FilterGetter(self.parent.build(context), self.predicate, self.negate)

    @property
    def stores(self) -> tuple[str, ...]:
        return self.parent.stores


class _FilterGetter(ValueGetter):
    def __init__(self, parent: ValueGetter, predicate: Callable[[Any, Any], Any], negate: bool) -> None:
        self.parent = parent
        self.predicate = predicate
        self.negate = negate

    def get_many(self, keys: list[Any], encoded: list[bytes]) -> list[Row]:
        predicate, negate = self.predicate, self.negate
        return [None if row is None or (not predicate(key, row[0])) is not negate else row
                for key, row in zip(keys, self.parent.get_many(keys, encoded))]


@dataclass(frozen=True)
class MapValuesGetterSpec(GetterSpec):
    """``table.map_values``: the parent's row with its value mapped, timestamp kept."""

    parent: GetterSpec
    mapper: Callable[..., Any]
    with_key: bool = False

    def build(self, context: ProcessorContext) -> ValueGetter:
        return _MapValuesGetter(self.parent.build(context), self.mapper, self.with_key)

    @property
    def stores(self) -> tuple[str, ...]:
        return self.parent.stores


class _MapValuesGetter(ValueGetter):
    def __init__(self, parent: ValueGetter, mapper: Callable[..., Any], with_key: bool) -> None:
        self.parent = parent
        self.mapper = mapper
        self.with_key = with_key

    def get_many(self, keys: list[Any], encoded: list[bytes]) -> list[Row]:
        mapper, with_key = self.mapper, self.with_key
        return [None if row is None else ((mapper(key, row[0]) if with_key else mapper(row[0])), row[1])
                for key, row in zip(keys, self.parent.get_many(keys, encoded))]


@dataclass(frozen=True)
class JoinGetterSpec(GetterSpec):
    """A table-table join's result, computed from both sides' rows; its timestamp is the later one."""

    left: GetterSpec
    right: GetterSpec
    joiner: Joiner
    kind: JoinKind

    def build(self, context: ProcessorContext) -> ValueGetter:
        return _JoinGetter(self.left.build(context), self.right.build(context), self.joiner, self.kind)

    @property
    def stores(self) -> tuple[str, ...]:
        return self.left.stores + tuple(s for s in self.right.stores if s not in self.left.stores)


class _JoinGetter(ValueGetter):
    def __init__(self, left: ValueGetter, right: ValueGetter, joiner: Joiner, kind: JoinKind) -> None:
        self.left = left
        self.right = right
        self.joiner = joiner
        self.kind = kind

    def get_many(self, keys: list[Any], encoded: list[bytes]) -> list[Row]:
        joiner, kind = self.joiner, self.kind
        rows: list[Row] = []
        for left, right in zip(self.left.get_many(keys, encoded), self.right.get_many(keys, encoded)):
            if left is not None and left[0] is None:
                left = None  # a derived row mapped to None is no row, as in Kafka Streams
            if right is not None and right[0] is None:
                right = None
            if left is not None and right is not None:
                rows.append((joiner(left[0], right[0]), max(left[1], right[1])))
            elif left is not None and kind != "inner":
                rows.append((joiner(left[0], None), left[1]))
            elif right is not None and kind == "outer":
                rows.append((joiner(None, right[0]), right[1]))
            else:
                rows.append(None)
        return rows
