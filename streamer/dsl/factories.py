"""How each logical node type becomes the processor every task builds: one registration per type.

``processor_factory`` dispatches on the node's type. The core operations register here;
an operation with a module of its own (windows, joins) registers next to its node types,
which are imported whenever such a node exists.
"""

from __future__ import annotations

from functools import partial, singledispatch
from typing import Callable

from streamer.dsl.nodes import (
    BranchNode,
    FilterNode,
    FlatMapNode,
    FlatMapValuesNode,
    FunctionNode,
    LogicalGraph,
    LogicalNode,
    MapNode,
    MapValuesNode,
    MergeNode,
    PeekNode,
    ProcessNode,
    SelectKeyNode,
    SinkNode,
    SourceNode,
    SplitNode,
    StoreNode,
    StreamAggregateNode,
    TableAggregateNode,
    TableFilterNode,
    TableGroupByNode,
    TableMapValuesNode,
    TableSourceNode,
    ToStreamNode,
)
from streamer.dsl.windowed import SuppressNode, WindowedAggregateNode
from streamer.errors import TopologyError
from streamer.processors.aggregate import StreamAggregate, TableAggregate
from streamer.processors.api import Processor
from streamer.processors.async_ops import AsyncOperation
from streamer.processors.session_aggregate import SessionAggregate
from streamer.processors.sink import Sink
from streamer.processors.sliding_aggregate import SlidingAggregate
from streamer.processors.source import Source
from streamer.processors.suppress import SuppressUntilClose
from streamer.processors.stateless import (
    Filter,
    FlatMap,
    FlatMapValues,
    Map,
    MapValues,
    PassThrough,
    Peek,
    SelectKey,
    Split,
)
from streamer.processors.table import TableFilter, TableGroupBy, TableMapValues, TableSource, ToStream
from streamer.processors.user import UserProcessorNode
from streamer.processors.window_aggregate import WindowAggregate
from streamer.windows.windows import SessionWindows, SlidingWindows

Factory = Callable[[], Processor]


@singledispatch
def processor_factory(node: LogicalNode, graph: LogicalGraph) -> Factory:
    """How every task builds the processor of ``node``."""
    raise TopologyError(f"no processor for operation {node.op!r} (node {node.name})")


@processor_factory.register
def _source(node: SourceNode, graph: LogicalGraph) -> Factory:
    return partial(Source, node.name, node.key_serde, node.value_serde, node.timestamp_extractor)


@processor_factory.register
def _sink(node: SinkNode, graph: LogicalGraph) -> Factory:
    return partial(Sink, node.name, node.topic, node.key_serde, node.value_serde, internal=node.internal,
                   extractor=node.extractor, partitioner=node.partitioner)


@processor_factory.register
def _split(node: SplitNode, graph: LogicalGraph) -> Factory:
    return partial(Split, node.name, node.predicates, node.has_default, node.is_async)


@processor_factory.register(BranchNode)
@processor_factory.register(MergeNode)
def _pass_through(node: LogicalNode, graph: LogicalGraph) -> Factory:
    return partial(PassThrough, node.name)


#: The synchronous processor of each stateless node type; async functions all run in AsyncOperation.
_STATELESS: dict[type[FunctionNode], Callable[[FunctionNode], Factory]] = {
    FilterNode: lambda n: partial(Filter, n.name, n.function, n.negate),  # type: ignore[attr-defined]
    MapNode: lambda n: partial(Map, n.name, n.function),
    MapValuesNode: lambda n: partial(MapValues, n.name, n.function, n.with_key),
    FlatMapNode: lambda n: partial(FlatMap, n.name, n.function),
    FlatMapValuesNode: lambda n: partial(FlatMapValues, n.name, n.function, n.with_key),
    SelectKeyNode: lambda n: partial(SelectKey, n.name, n.function),
    PeekNode: lambda n: partial(Peek, n.name, n.function, n.terminal),  # type: ignore[attr-defined]
}


@processor_factory.register
def _stateless(node: FunctionNode, graph: LogicalGraph) -> Factory:
    if node.is_async:
        operation = f"{node.op}_with_key" if node.with_key else node.op
        return partial(AsyncOperation, node.name, operation, node.function)
    return _STATELESS[type(node)](node)


@processor_factory.register
def _process(node: ProcessNode, graph: LogicalGraph) -> Factory:
    specs = [graph.stores[name] for name in node.store_names]
    serdes = {spec.name: (spec.key_serde, spec.value_serde, spec.timestamped) for spec in specs}
    return partial(UserProcessorNode, node.name, node.factory, serdes)


@processor_factory.register
def _table_source(node: TableSourceNode, graph: LogicalGraph) -> Factory:
    store = graph.stores[node.store]
    return partial(TableSource, node.name, store.name, store.key_serde, store.value_serde)


@processor_factory.register
def _stream_aggregate(node: StreamAggregateNode, graph: LogicalGraph) -> Factory:
    store = graph.stores[node.store]
    return partial(StreamAggregate, node.name, store.name, store.key_serde, store.value_serde,
                   node.initializer, node.aggregator)


@processor_factory.register
def _table_aggregate(node: TableAggregateNode, graph: LogicalGraph) -> Factory:
    store = graph.stores[node.store]
    return partial(TableAggregate, node.name, store.name, store.key_serde, store.value_serde,
                   node.initializer, node.adder, node.subtractor)


@processor_factory.register
def _table_filter(node: TableFilterNode, graph: LogicalGraph) -> Factory:
    return partial(TableFilter, node.name, node.predicate, node.negate, _sends_old_values(node))


def _sends_old_values(node: LogicalNode) -> bool:
    """Whether a table's updates carry the value each replaced (Kafka Streams' "send old values").

    Filters need it to tell a row leaving them (a delete) from one that never matched (no
    output). Aggregates and named tables are materialized and always can, as can node types
    that say so (``sends_old_values``: table-table join results); a derived table
    asks its parent; operations that need old values (regrouping, suppression) force it.
    """
    if isinstance(node, TableSourceNode):
        return node.named or _forced_to_send_old_values(node)
    if isinstance(node, (TableFilterNode, TableMapValuesNode)):
        return _sends_old_values(node.parents[0]) or _forced_to_send_old_values(node)
    return isinstance(node, StoreNode) or getattr(node, "sends_old_values", False)


def _forced_to_send_old_values(node: LogicalNode) -> bool:
    return any(
        isinstance(child, (TableGroupByNode, SuppressNode))
        or getattr(child, "needs_old_values", False)  # e.g. foreign-key joins, for both inputs
        or (isinstance(child, (TableFilterNode, TableMapValuesNode)) and _forced_to_send_old_values(child))
        for child in node.children
    )


@processor_factory.register
def _table_map_values(node: TableMapValuesNode, graph: LogicalGraph) -> Factory:
    return partial(TableMapValues, node.name, node.mapper, node.with_key)


@processor_factory.register
def _to_stream(node: ToStreamNode, graph: LogicalGraph) -> Factory:
    return partial(ToStream, node.name)


@processor_factory.register
def _table_group_by(node: TableGroupByNode, graph: LogicalGraph) -> Factory:
    return partial(TableGroupBy, node.name, node.selector)


@processor_factory.register
def _windowed_aggregate(node: WindowedAggregateNode, graph: LogicalGraph) -> Factory:
    store, windows = graph.stores[node.store], node.windows
    common = (node.name, store.name, store.key_serde, store.value_serde)
    functions = (node.retention_ms, node.initializer, node.aggregator)
    if isinstance(windows, SessionWindows):
        assert node.merger is not None
        return partial(SessionAggregate, *common, windows, *functions, node.merger, buffer_name=node.buffer,
                       idle_ms=node.idle_ms)
    processor = SlidingAggregate if isinstance(windows, SlidingWindows) else WindowAggregate
    return partial(processor, *common, windows, *functions, buffer_name=node.buffer,  # type: ignore[arg-type]
                   idle_ms=node.idle_ms)


@processor_factory.register
def _suppress(node: SuppressNode, graph: LogicalGraph) -> Factory:
    buffer = graph.stores[node.store]
    return partial(SuppressUntilClose, node.name, buffer.name, buffer.key_serde, buffer.value_serde,
                   node.duration_ms, idle_ms=node.idle_ms)


