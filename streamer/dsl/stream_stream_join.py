"""Windowed stream-stream joins: ``left.join(right, joiner, JoinWindows...)``, ``left_join``, ``outer_join``.

The join becomes one input node per side (marks the records' side) and one join node that
owns three stores: a window store per side that keeps every record (duplicates retained,
timestamped values, retention before + after + grace, as Kafka Streams) and, for left and
outer joins, the outer store of records still waiting for a match. An input whose key
changed upstream goes through a repartition topic first, so both inputs are partitioned by
the join key; the shared stores put both inputs in one sub-topology, whose task takes
them in timestamp order. See streamer.processors.stream_stream_join for the semantics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Literal

from streamer.dsl.factories import Factory, processor_factory
from streamer.dsl.functions import sync_function
from streamer.dsl.nodes import LogicalGraph, LogicalNode
from streamer.errors import TopologyError
from streamer.processors.stream_stream_join import JoinInput, StreamStreamJoin
from streamer.serde import BYTES, Serde, SerdeLike, resolve_serde
from streamer.windows.join_windows import JoinWindows

if TYPE_CHECKING:
    from streamer.dsl.stream import JoinKind, Stream


@dataclass(eq=False, kw_only=True)
class JoinInputNode(LogicalNode):
    """One input of a stream-stream join, its records marked with their side."""

    side: Literal["left", "right"]

    @property
    def op(self) -> str:
        return f"stream_join_{self.side}_input"


@dataclass(eq=False, kw_only=True)
class StreamStreamJoinNode(LogicalNode):
    """Joins the records of both inputs within ``windows``; parents: the left then the right input."""

    kind: str
    windows: JoinWindows
    joiner: Callable[[Any, Any], Any]
    key_serde: Serde
    left_serde: Serde
    right_serde: Serde
    left_store: str
    right_store: str
    outer_store: str | None = None

    @property
    def op(self) -> str:
        return f"stream_{self.kind}_join"

    @property
    def stores(self) -> tuple[str, ...]:
        both = (self.left_store, self.right_store)
        return both if self.outer_store is None else (*both, self.outer_store)

    @property
    def detail(self) -> str:
        return str(self.windows)


@processor_factory.register
def _join_input(node: JoinInputNode, graph: LogicalGraph) -> Factory:
    return partial(JoinInput, node.name, node.side == "left")


@processor_factory.register
def _stream_stream_join(node: StreamStreamJoinNode, graph: LogicalGraph) -> Factory:
    return partial(StreamStreamJoin, node.name, node.key_serde, node.left_serde, node.right_serde, node.windows,
                   node.joiner, node.kind, node.left_store, node.right_store, node.outer_store)


def join_streams(stream: Stream, other: Stream, joiner: Callable[[Any, Any], Any], windows: JoinWindows,
                 value_serde: SerdeLike, name: str | None, kind: JoinKind) -> Stream:
    """The windowed join of two streams (``stream`` is the left side); a new Stream of the results.

    ``value_serde`` is the serde of the results (default: the left stream's value serde);
    each side's store uses that side's key and value serdes. ``name`` names the join node,
    and prefixes its stores (``<name>-left-store``, ``-right-store``, ``-outer-store``)
    and repartition topics (``<name>-left-repartition``, ``-right-``).
    """
    from streamer.dsl.stream import Stream, through_repartition_topic

    if not isinstance(windows, JoinWindows):
        raise TopologyError(f"a stream-stream join takes JoinWindows (e.g. JoinWindows.of_time_difference_and_grace"
                            f"(ms, grace_ms)), got {windows!r}")
    if other.builder is not stream.builder:
        raise TopologyError("join() needs two streams of the same StreamsBuilder")
    if not callable(joiner):
        raise TopologyError(f"join() needs a joiner function joiner(left_value, right_value), got {joiner!r}")
    builder = stream.builder
    base = name or builder.generated_name(f"stream-{kind}-join")
    left, right = stream.node, other.node
    if left.key_changed:
        left = through_repartition_topic(builder, left, f"{base}-left", stream.key_serde, stream.value_serde, None)
    if other.node is stream.node:  # a self-join: both sides read the same (repartitioned) records
        right = left
    elif right.key_changed:
        right = through_repartition_topic(builder, right, f"{base}-right", other.key_serde, other.value_serde, None)
    retention = windows.retention_ms
    stores = {
        side: builder.add_store(f"{base}-{side}-store", "window", stream.key_serde, serde, retention_ms=retention,
                                timestamped=True, retain_duplicates=True)
        for side, serde in (("left", stream.value_serde), ("right", other.value_serde))
    }
    outer = None if kind == "inner" else builder.add_store(f"{base}-outer-store", "key_value", BYTES, BYTES)
    inputs: list[LogicalNode] = [builder.add(JoinInputNode, [parent], f"{base}-{side}-input", key_changed=False,
                                             side=side)
                                 for parent, side in ((left, "left"), (right, "right"))]
    node = builder.add(StreamStreamJoinNode, inputs, base, key_changed=False, kind=kind, windows=windows,
                       joiner=sync_function(joiner), key_serde=stream.key_serde, left_serde=stream.value_serde,
                       right_serde=other.value_serde, left_store=stores["left"], right_store=stores["right"],
                       outer_store=outer)
    return Stream(builder, node, stream.key_serde, resolve_serde(value_serde, stream.value_serde))
