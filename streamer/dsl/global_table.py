"""Global tables: a table every worker keeps whole, and the stream joins that read it.

A global table is not part of any sub-topology: it has no task, no source node and no
changelog (its topic is its changelog). The compiled topology lists it in
``Topology.global_stores``; the runtime keeps one copy per worker, updated by the
worker's global updater, and every task of that worker reads the same copy. So a
stream joins it on any key it can compute from its records (``key_selector``) without
being co-partitioned with it, and without a repartition topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from streamer.dsl.factories import Factory, processor_factory
from streamer.dsl.functions import sync_function
from streamer.dsl.nodes import Function, LogicalGraph, LogicalNode, SourceNode
from streamer.errors import TopologyError
from streamer.processors.global_join import GlobalTableJoin
from streamer.serde import Serde
from streamer.topology.topology import GlobalStoreSpec, StoreSpec

if TYPE_CHECKING:
    from streamer.dsl.builder import StreamsBuilder
    from streamer.dsl.stream import JoinKind, Stream


class GlobalTable:
    """The latest value per key of every partition of a topic, on every worker.

    Only joins read it (``stream.join(global_table, joiner, key_selector=fn)``), and the
    local read API: ``worker.store(name)`` / ``driver.store(name)``.
    """

    def __init__(self, builder: StreamsBuilder, spec: GlobalStoreSpec) -> None:
        self.builder = builder
        self.spec = spec

    @property
    def name(self) -> str:
        """The name of its store."""
        return self.spec.name

    @property
    def topic(self) -> str:
        return self.spec.topic

    @property
    def key_serde(self) -> Serde:
        return self.spec.store.key_serde

    @property
    def value_serde(self) -> Serde:
        return self.spec.store.value_serde

    def __repr__(self) -> str:
        return f"GlobalTable({self.name!r}, topic={self.topic!r})"


def global_table_spec(topic: str, name: str, key_serde: Serde, value_serde: Serde) -> GlobalStoreSpec:
    """The compiled form: a key-value store without a changelog (the topic is one), fed from ``topic``."""
    return GlobalStoreSpec(StoreSpec(name, "key_value", False, key_serde, value_serde), topic)


def check_global_tables(graph: LogicalGraph, specs: list[GlobalStoreSpec]) -> list[GlobalStoreSpec]:
    """A global table's topic may be read by nothing else: Kafka Streams refuses that too."""
    streams = {topic: node.name for node in graph.nodes if isinstance(node, SourceNode) for topic in node.topics}
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.topic in streams:
            raise TopologyError(
                f"topic {spec.topic!r} is read by global table {spec.name} and by source {streams[spec.topic]}; "
                "a topic feeds one of them: join the stream with the global table instead of reading it twice"
            )
        if spec.topic in seen:
            raise TopologyError(f"topic {spec.topic!r} feeds two global tables ({seen[spec.topic]} and {spec.name}); "
                                "read it once and join both streams with that one")
        seen[spec.topic] = spec.name
    return list(specs)


@dataclass(eq=False, kw_only=True)
class GlobalTableJoinNode(LogicalNode):
    """``stream.join/left_join(global_table, joiner, key_selector=fn)``.

    Lists no stores on purpose: the global store belongs to the worker, not to this
    node's task, so it must not pull anything into the node's sub-topology.
    """

    global_store: str
    key_selector: Function
    joiner: Function
    left: bool
    table_key_serde: Serde
    table_value_serde: Serde

    @property
    def op(self) -> str:
        return "left_join_global_table" if self.left else "join_global_table"

    @property
    def detail(self) -> str:
        return f"global store {self.global_store}"


@processor_factory.register
def _global_table_join(node: GlobalTableJoinNode, graph: LogicalGraph) -> Factory:
    return partial(GlobalTableJoin, node.name, node.global_store, node.table_key_serde, node.table_value_serde,
                   node.key_selector, node.joiner, node.left)


def join_global_table(stream: Stream, table: GlobalTable, joiner: Callable[[Any, Any], Any],
                      key_selector: Callable[[Any, Any], Any], name: str | None, kind: JoinKind) -> Stream:
    """Each stream record with the global row of ``key_selector(key, value)``: ``joiner(value, row)``.

    The result keeps the stream's key, timestamp and serdes; nothing is repartitioned.
    """
    from streamer.dsl.stream import Stream

    if table.builder is not stream.builder:
        raise TopologyError(f"{table!r} belongs to another StreamsBuilder; join tables of the same builder")
    if kind not in ("inner", "left"):
        raise TopologyError("a stream joins a global table with join or left_join")
    node = stream.builder.add(
        GlobalTableJoinNode, [stream.node], name,
        global_store=table.name, key_selector=_plain(key_selector, "key_selector"), joiner=_plain(joiner, "joiner"),
        left=kind == "left", table_key_serde=table.key_serde, table_value_serde=table.value_serde,
    )
    return Stream(stream.builder, node, stream.key_serde, stream.value_serde)


def _plain(function: Callable[..., Any], what: str) -> Function:
    checked = sync_function(function)
    if checked is None:
        raise TopologyError(f"a join with a global table needs a {what} function")
    return checked
