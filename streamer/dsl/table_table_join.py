"""Table-table joins on the primary key, and how any table is read by a join (its value getter).

``left.join(right, joiner)`` (and ``left_join``, ``outer_join``) becomes three nodes: one
processor per side, each forwarding the updates of its table joined with the other
table's current row, and a merge node that is the result table. Both inputs must be
co-partitioned (checked when the application starts); a table's key never changes
upstream in the DSL, since every re-keying into a table goes through a repartition topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from streamer.dsl.factories import Factory, processor_factory
from streamer.dsl.functions import sync_function
from streamer.dsl.nodes import LogicalGraph, LogicalNode, StoreNode, TableFilterNode, TableMapValuesNode
from streamer.errors import TopologyError
from streamer.processors.stateless import PassThrough
from streamer.processors.table_table_join import Side, TableJoinSide
from streamer.processors.value_getters import (
    FilterGetterSpec,
    GetterSpec,
    JoinGetterSpec,
    JoinKind,
    MapValuesGetterSpec,
    StoreGetterSpec,
)
from streamer.serde import Serde, SerdeLike, resolve_serde

if TYPE_CHECKING:
    from streamer.dsl.table import Table


@dataclass(eq=False, kw_only=True)
class TableJoinSideNode(LogicalNode):
    """The updates of one input of a table-table join, joined with the other input's rows.

    It asks nothing of its input: as in Kafka Streams, a filter above a join sends old
    values only if its own table does, so without them a join can forward deletes of
    rows that never matched (downstream they are deletes of absent keys).
    """

    key_serde: Serde
    other: GetterSpec
    joiner: Callable[[Any, Any], Any]
    kind: JoinKind
    side: Side

    @property
    def op(self) -> str:
        return f"table_{self.kind}_join_{self.side}"

    @property
    def stores(self) -> tuple[str, ...]:
        return self.other.stores

    @property
    def detail(self) -> str:
        return f"reads {', '.join(self.other.stores)}"


@dataclass(eq=False, kw_only=True)
class TableJoinNode(LogicalNode):
    """The result of a table-table join: both sides' joined updates, and a view for reading it.

    Its changes always carry old values (every join input is materialized or reads a
    materialized parent), as Kafka Streams' join results do: filters below it drop
    updates that match neither before nor after.
    """

    view: JoinGetterSpec
    sends_old_values = True

    @property
    def op(self) -> str:
        return f"table_{self.view.kind}_join"


@processor_factory.register
def _table_join_side(node: TableJoinSideNode, graph: LogicalGraph) -> Factory:
    return partial(TableJoinSide, node.name, node.key_serde, node.other, node.joiner, node.kind, node.side)


@processor_factory.register
def _table_join(node: TableJoinNode, graph: LogicalGraph) -> Factory:
    return partial(PassThrough, node.name)


def value_getter(table: Table) -> GetterSpec:
    """How a join reads ``table``'s row of a key: from its store, or through its derivation."""
    return _getter_of(table.node, table.builder.graph)


def _getter_of(node: LogicalNode, graph: LogicalGraph) -> GetterSpec:
    if isinstance(node, TableFilterNode):
        return FilterGetterSpec(_getter_of(node.parents[0], graph), node.predicate, node.negate)
    if isinstance(node, TableMapValuesNode):
        return MapValuesGetterSpec(_getter_of(node.parents[0], graph), node.mapper, node.with_key)
    if isinstance(node, TableJoinNode):
        return node.view
    if isinstance(node, StoreNode):
        store = graph.stores[node.store]
        if store.kind == "key_value" and store.timestamped:
            return StoreGetterSpec(store.name, store.value_serde)
    raise TopologyError(
        f"a join cannot read the table of {node.name} ({node.op}): it has no key-value store to read. "
        "Materialize it first: .to_stream().to_table(\"name\")"
    )


def join_tables(table: Table, other: Table, joiner: Callable[[Any, Any], Any], value_serde: SerdeLike,
                name: str | None, kind: str) -> Table:
    """``table.<kind>_join(other, joiner)``: a table of ``joiner(value, other_value)`` per key.

    ``value_serde`` is the serde of the joined values (default: ``table``'s value serde),
    used where the result is written or materialized downstream.
    """
    from streamer.dsl.table import Table

    if kind not in ("inner", "left", "outer"):
        raise TopologyError(f"unknown table join kind {kind!r}")
    if other.builder is not table.builder:
        raise TopologyError("a table joins a table of the same StreamsBuilder")
    builder = table.builder
    join_kind: JoinKind = kind  # type: ignore[assignment]
    function = sync_function(joiner)
    assert function is not None
    left_view, right_view = value_getter(table), value_getter(other)
    base = name or builder.generated_name(f"table-{kind}-join")
    left_side = builder.add(TableJoinSideNode, [table.node], f"{base}-left", key_changed=False,
                            key_serde=table.key_serde, other=right_view, joiner=function, kind=join_kind, side="left")
    right_side = builder.add(TableJoinSideNode, [other.node], f"{base}-right", key_changed=False,
                             key_serde=table.key_serde, other=left_view, joiner=function, kind=join_kind,
                             side="right")
    view = JoinGetterSpec(left_view, right_view, function, join_kind)
    node = builder.add(TableJoinNode, [left_side, right_side], base, key_changed=False, view=view)
    return Table(builder, node, table.key_serde, resolve_serde(value_serde, table.value_serde), None)
