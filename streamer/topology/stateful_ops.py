"""Processor factories for the DSL's stateful operations: aggregations, tables, user processors."""

from __future__ import annotations

from functools import partial
from typing import Callable

from streamer.dsl.graph import LogicalGraph, LogicalNode
from streamer.processors.aggregate import StreamAggregate, TableAggregate
from streamer.processors.api import Processor
from streamer.processors.user import UserProcessorNode
from streamer.processors.table import TableFilter, TableGroupBy, TableMapValues, TableSource, ToStream

Factory = Callable[[], Processor]


def stateful_factory(graph: LogicalGraph, node: LogicalNode) -> Factory | None:
    """The factory for a stateful or table operation, or None if ``node`` is not one."""
    p = node.params
    store = graph.stores.get(p.get("store", ""))
    serdes = (store.key_serde, store.value_serde) if store else ()
    if node.op == "table_source":
        return partial(TableSource, node.name, store.name, *serdes)
    if node.op == "stream_aggregate":
        return partial(StreamAggregate, node.name, store.name, *serdes, p["initializer"], p["aggregator"])
    if node.op == "table_aggregate":
        return partial(TableAggregate, node.name, store.name, *serdes, p["initializer"], p["adder"], p["subtractor"])
    if node.op == "table_filter":
        return partial(TableFilter, node.name, p["function"], p["negate"])
    if node.op == "table_map_values":
        return partial(TableMapValues, node.name, p["function"], p["with_key"])
    if node.op == "to_stream":
        return partial(ToStream, node.name)
    if node.op == "table_group_by":
        return partial(TableGroupBy, node.name, p["function"])
    if node.op == "process":
        serdes_of = {name: (graph.stores[name].key_serde, graph.stores[name].value_serde) for name in node.stores}
        return partial(UserProcessorNode, node.name, p["factory"], serdes_of)
    return None
