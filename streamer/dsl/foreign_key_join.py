"""Foreign-key table joins: ``table.join(other, joiner, foreign_key_extractor=fn)`` and ``left_join``.

Built as Kafka Streams' KIP-213 join (see streamer.processors.foreign_key_join): the
left table's task subscribes each row to the right row its foreign key names, through
a subscription topic partitioned like ``other``; the right table's task keeps the
subscriptions in a store and answers them, and answers every subscriber again when a
right row changes, through a response topic partitioned like ``table``; the left task
joins each response with the row as it is now, and the results form a materialized table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from streamer.dsl.factories import Factory, processor_factory
from streamer.dsl.functions import sync_function
from streamer.dsl.nodes import LogicalGraph, LogicalNode, SinkNode, SourceNode, TableSourceNode
from streamer.dsl.table_table_join import value_getter
from streamer.errors import TopologyError
from streamer.processors.foreign_key_join import (
    ForeignRowUpdate,
    ResponseJoin,
    ResponseSerde,
    SubscriptionReceive,
    SubscriptionSend,
    SubscriptionSerde,
    to_primary_partition,
)
from streamer.processors.value_getters import GetterSpec
from streamer.serde import BYTES, Serde, SerdeLike, resolve_serde

if TYPE_CHECKING:
    from streamer.dsl.table import Table

Function = Callable[..., Any]


@dataclass(eq=False, kw_only=True)
class ForeignKeySubscribeNode(LogicalNode):
    """Left side: each left update becomes subscriptions keyed by foreign key.

    Its input sends old values (``needs_old_values``): the old foreign key is what a
    row unsubscribes from when its foreign key changes or it is deleted.
    """

    needs_old_values = True
    extractor: Function
    key_serde: Serde
    value_serde: Serde
    foreign_key_serde: Serde
    left_join: bool

    @property
    def op(self) -> str:
        return "fk_join_subscribe"

    @property
    def detail(self) -> str:
        return "left join" if self.left_join else "inner join"


@dataclass(eq=False, kw_only=True)
class ForeignKeyReceiveNode(LogicalNode):
    """Right side: stores subscriptions and answers them with the right row it reads."""

    store: str
    foreign_key_serde: Serde
    other: GetterSpec

    @property
    def op(self) -> str:
        return "fk_join_receive"

    @property
    def stores(self) -> tuple[str, ...]:
        return (self.store, *(s for s in self.other.stores if s != self.store))

    @property
    def detail(self) -> str:
        return f"reads {', '.join(self.other.stores)}"


@dataclass(eq=False, kw_only=True)
class ForeignKeyUpdateNode(LogicalNode):
    """Right side: a right row's update answers every subscriber of that row.

    Its input sends old values, as Kafka Streams asks of the foreign table: a filter
    above it then drops updates that match neither before nor after.
    """

    needs_old_values = True
    store: str
    foreign_key_serde: Serde

    @property
    def op(self) -> str:
        return "fk_join_update"

    @property
    def stores(self) -> tuple[str, ...]:
        return (self.store,)


@dataclass(eq=False, kw_only=True)
class ForeignKeyResponseNode(LogicalNode):
    """Left side: joins each response with the left row it reads, dropping stale ones."""

    table: GetterSpec
    key_serde: Serde
    value_serde: Serde
    joiner: Function
    left_join: bool

    @property
    def op(self) -> str:
        return "fk_join_response"

    @property
    def stores(self) -> tuple[str, ...]:
        return self.table.stores

    @property
    def detail(self) -> str:
        return f"reads {', '.join(self.table.stores)}"


@dataclass(eq=False, kw_only=True)
class ForeignKeyJoinResultNode(TableSourceNode):
    """The join's result table, materialized like a table read from a topic (Kafka Streams' KTableSource)."""

    @property
    def op(self) -> str:
        return "fk_join_result"


@processor_factory.register
def _subscribe(node: ForeignKeySubscribeNode, graph: LogicalGraph) -> Factory:
    return partial(SubscriptionSend, node.name, node.extractor, node.key_serde, node.value_serde,
                   node.foreign_key_serde, node.left_join)


@processor_factory.register
def _receive(node: ForeignKeyReceiveNode, graph: LogicalGraph) -> Factory:
    return partial(SubscriptionReceive, node.name, node.store, node.foreign_key_serde, node.other)


@processor_factory.register
def _update(node: ForeignKeyUpdateNode, graph: LogicalGraph) -> Factory:
    return partial(ForeignRowUpdate, node.name, node.store, node.foreign_key_serde)


@processor_factory.register
def _response(node: ForeignKeyResponseNode, graph: LogicalGraph) -> Factory:
    return partial(ResponseJoin, node.name, node.table, node.key_serde, node.value_serde, node.joiner,
                   node.left_join)


def join_on_foreign_key(table: Table, other: Table, joiner: Callable[[Any, Any], Any],
                        extractor: Callable[[Any], Any], value_serde: SerdeLike, name: str | None,
                        kind: str) -> Table:
    """``table.join(other, joiner, foreign_key_extractor=extractor)`` (kind "inner") or ``left_join`` ("left").

    ``value_serde`` is the serde of the joined values (default: ``table``'s value serde),
    for the result store. ``name`` names the result store (queryable, like a named
    table's) and prefixes the join's topics, stores and processors; without it they get
    generated names that stay stable while the DSL calls keep their order.
    """
    from streamer.dsl.table import Table

    if kind not in ("inner", "left"):
        raise TopologyError(f"a foreign-key join is inner (join) or left (left_join), not {kind!r}")
    if other.builder is not table.builder:
        raise TopologyError("a table joins a table of the same StreamsBuilder")
    builder = table.builder
    extract, join = sync_function(extractor), sync_function(joiner)
    assert extract is not None and join is not None
    left_view, right_view = value_getter(table), value_getter(other)
    base = name or builder.generated_name("fk-join")
    left_join = kind == "left"
    responses = ResponseSerde(other.value_serde)

    subscribe = builder.add(ForeignKeySubscribeNode, [table.node], f"{base}-subscribe", extractor=extract,
                            key_serde=table.key_serde, value_serde=table.value_serde,
                            foreign_key_serde=other.key_serde, left_join=left_join)
    subscriptions = _internal_topic(builder, subscribe, f"{base}-subscription-registration", SubscriptionSerde(),
                                    BYTES)
    store = builder.add_store(f"{base}-subscription-store", "key_value", BYTES, BYTES, timestamped=True)
    receive = builder.add(ForeignKeyReceiveNode, [subscriptions], f"{base}-subscription-receive", store=store,
                          foreign_key_serde=other.key_serde, other=right_view)
    update = builder.add(ForeignKeyUpdateNode, [other.node], f"{base}-foreign-update", key_changed=False,
                         store=store, foreign_key_serde=other.key_serde)
    answers = _internal_topic(builder, [receive, update], f"{base}-subscription-response", responses,
                              table.key_serde, partitioner=to_primary_partition)
    response = builder.add(ForeignKeyResponseNode, [answers], f"{base}-response-join", table=left_view,
                           key_serde=table.key_serde, value_serde=table.value_serde, joiner=join,
                           left_join=left_join)
    result_serde = resolve_serde(value_serde, table.value_serde)
    result_store = builder.add_store(name or f"{base}-result", "key_value", table.key_serde, result_serde,
                                     timestamped=True)
    result = builder.add(ForeignKeyJoinResultNode, [response], f"{base}-result", key_changed=False,
                         store=result_store, named=name is not None)
    return Table(builder, result, table.key_serde, result_serde, result_store)


def _internal_topic(builder: Any, writers: LogicalNode | list[LogicalNode], base: str, value_serde: Serde,
                    reader_key_serde: Serde, partitioner: Function | None = None) -> SourceNode:
    """An internal topic ``<base>-topic`` partitioned like the input of the sub-topology that reads it.

    Writers send keys already serialized (BYTES); the reading source deserializes them
    with ``reader_key_serde``.
    """
    topic = f"{base}-topic"
    parents = writers if isinstance(writers, list) else [writers]
    builder.add(SinkNode, parents, f"{base}-sink", topic=topic, internal=True, key_serde=BYTES,
                value_serde=value_serde, partitioner=partitioner, partitions_follow_reader=True)
    return builder.add(SourceNode, [], f"{base}-source", key_changed=False, topics=(topic,), internal=True,
                       key_serde=reader_key_serde, value_serde=value_serde)
