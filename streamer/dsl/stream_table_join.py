"""Stream-table joins: ``stream.join(table, joiner)`` and ``stream.left_join(table, joiner)``.

The join node hangs below the stream and reads the table through its value getter
(``streamer.dsl.table_table_join.value_getter``), so it lives in the task of the
table's store. A stream whose key changed upstream goes through a repartition topic
first, partitioned like the table's input (streamer.runtime.topics).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from streamer.dsl.factories import Factory, processor_factory
from streamer.dsl.functions import sync_function
from streamer.dsl.nodes import LogicalGraph, LogicalNode, SinkNode
from streamer.dsl.stream import through_repartition_topic
from streamer.dsl.table_table_join import value_getter
from streamer.errors import TopologyError
from streamer.processors.stream_table_join import StreamTableJoin
from streamer.processors.value_getters import GetterSpec
from streamer.serde import Serde, SerdeLike, resolve_serde

if TYPE_CHECKING:
    from streamer.dsl.stream import Stream
    from streamer.dsl.table import Table


@dataclass(eq=False, kw_only=True)
class StreamTableJoinNode(LogicalNode):
    """Each stream record joined with the table row of its key; ``left`` keeps records without one."""

    key_serde: Serde
    table: GetterSpec
    joiner: Callable[[Any, Any], Any]
    left: bool

    @property
    def op(self) -> str:
        return "stream_table_left_join" if self.left else "stream_table_join"

    @property
    def stores(self) -> tuple[str, ...]:
        return self.table.stores

    @property
    def detail(self) -> str:
        return f"reads {', '.join(self.table.stores)}"


@processor_factory.register
def _stream_table_join(node: StreamTableJoinNode, graph: LogicalGraph) -> Factory:
    return partial(StreamTableJoin, node.name, node.key_serde, node.table, node.joiner, node.left)


def join_stream_table(stream: Stream, table: Table, joiner: Callable[[Any, Any], Any], value_serde: SerdeLike,
                      name: str | None, kind: str) -> Stream:
    """``stream.join(table, joiner)`` (kind "inner") or ``left_join`` (kind "left").

    ``value_serde`` is the serde of the joined values (default: the stream's value
    serde), the one ``to`` and grouping use unless given theirs.
    """
    from streamer.dsl.stream import Stream

    if kind not in ("inner", "left"):
        raise TopologyError("a stream joins a table with join or left_join")
    if table.builder is not stream.builder:
        raise TopologyError("a stream joins a table of the same StreamsBuilder")
    if table.node.key_changed:
        raise TopologyError(f"table {table.node.name} is keyed differently from its input; "
                            "materialize it with .to_stream().to_table(\"name\") before joining")
    builder = stream.builder
    function = sync_function(joiner)
    upstream: LogicalNode = stream.node
    if upstream.key_changed:
        upstream = _repartitioned(stream, name or builder.generated_name("join"))
    node = builder.add(StreamTableJoinNode, [upstream], name, key_changed=False, key_serde=stream.key_serde,
                       table=value_getter(table), joiner=function, left=kind == "left")
    return Stream(builder, node, stream.key_serde, resolve_serde(value_serde, stream.value_serde))


def _repartitioned(stream: Stream, base: str) -> LogicalNode:
    """The stream through ``<base>-repartition``, with as many partitions as the table's input (Kafka Streams'
    co-partitioning of a re-keyed join input), so the join's task reads the same partition of both."""
    source = through_repartition_topic(stream.builder, stream.node, base, stream.key_serde, stream.value_serde, None)
    sink = stream.node.children[-1]
    assert isinstance(sink, SinkNode) and sink.internal
    sink.partitions_follow_reader = True
    return source
