"""Stream: an unbounded sequence of independent records, and its operations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal

from streamer.dsl.functions import function_params, is_async_callable
from streamer.dsl.nodes import (
    BranchNode,
    FilterNode,
    FlatMapNode,
    FlatMapValuesNode,
    FunctionNode,
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
    TableSourceNode,
)
from streamer.errors import TopologyError
from streamer.serde import Serde, SerdeLike, resolve_serde

if TYPE_CHECKING:
    from streamer.dsl.builder import StreamsBuilder
    from streamer.dsl.global_table import GlobalTable
    from streamer.dsl.grouped import GroupedStream
    from streamer.dsl.table import Table
    from streamer.windows.join_windows import JoinWindows

JoinKind = Literal["inner", "left", "outer"]


class Stream:
    """A stream of records. Operations return new streams; nothing runs until the topology does.

    User functions take ``(key, value)`` except the ``*_values`` operations, which take
    the value (or ``(key, value)`` with ``with_key=True``). Any of them may be ``async def``.
    Serdes given at the source carry through operations until replaced at ``to``,
    ``group_by`` or ``repartition``.
    """

    def __init__(self, builder: StreamsBuilder, node: LogicalNode, key_serde: Serde, value_serde: Serde) -> None:
        self.builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde

    def _then(self, node_type: type[FunctionNode], function: Callable[..., Any], name: str | None,
              key_changed: bool | None = None, **fields: Any) -> Stream:
        node = self.builder.add(node_type, [self.node], name, key_changed=key_changed,
                                **function_params(function, **fields))
        return Stream(self.builder, node, self.key_serde, self.value_serde)

    def filter(self, predicate: Callable[[Any, Any], Any], name: str | None = None) -> Stream:
        """Keep records for which ``predicate(key, value)`` is true."""
        return self._then(FilterNode, predicate, name)

    def filter_not(self, predicate: Callable[[Any, Any], Any], name: str | None = None) -> Stream:
        """Drop records for which ``predicate(key, value)`` is true."""
        return self._then(FilterNode, predicate, name, negate=True)

    def map(self, mapper: Callable[[Any, Any], tuple[Any, Any]], name: str | None = None) -> Stream:
        """Replace key and value by ``mapper(key, value) -> (key, value)``; marks the key changed."""
        return self._then(MapNode, mapper, name, key_changed=True)

    def map_values(self, mapper: Callable[..., Any], name: str | None = None, *, with_key: bool = False) -> Stream:
        """Replace the value by ``mapper(value)`` (``mapper(key, value)`` with ``with_key``)."""
        return self._then(MapValuesNode, mapper, name, with_key=with_key)

    def flat_map(self, mapper: Callable[[Any, Any], Iterable[tuple[Any, Any]]], name: str | None = None) -> Stream:
        """Replace each record by the ``(key, value)`` pairs ``mapper(key, value)`` yields."""
        return self._then(FlatMapNode, mapper, name, key_changed=True)

    def flat_map_values(
        self, mapper: Callable[..., Iterable[Any]], name: str | None = None, *, with_key: bool = False
    ) -> Stream:
        """Replace each record by one record per value ``mapper(value)`` yields, keeping the key."""
        return self._then(FlatMapValuesNode, mapper, name, with_key=with_key)

    def select_key(self, selector: Callable[[Any, Any], Any], name: str | None = None) -> Stream:
        """Set the key to ``selector(key, value)``; marks the key changed."""
        return self._then(SelectKeyNode, selector, name, key_changed=True)

    def peek(self, action: Callable[[Any, Any], Any], name: str | None = None) -> Stream:
        """Call ``action(key, value)`` for each record and pass it on unchanged."""
        return self._then(PeekNode, action, name)

    def foreach(self, action: Callable[[Any, Any], Any], name: str | None = None) -> None:
        """Call ``action(key, value)`` for each record; the stream ends here."""
        self._then(PeekNode, action, name, terminal=True)

    def process(self, processor: Callable[[], Any], *, stores: Iterable[str] = (), name: str | None = None) -> Stream:
        """Run a ``RecordProcessor`` (a subclass, or a function returning an instance) on every record.

        ``stores`` names stores declared with ``builder.add_state_store`` that it uses.
        The processor may forward any key, so the result counts as key-changed.
        """
        store_names = tuple(stores)
        for store in store_names:
            if store not in self.builder.graph.stores:
                raise TopologyError(f"process() uses store {store!r}; declare it first with builder.add_state_store")
        if not callable(processor):
            raise TopologyError(f"process() needs a RecordProcessor subclass or factory, got {processor!r}")
        node = self.builder.add(ProcessNode, [self.node], name, key_changed=True, factory=processor,
                                store_names=store_names)
        return Stream(self.builder, node, self.key_serde, self.value_serde)

    def split(self, name: str | None = None) -> Splitter:
        """Route each record to the first branch whose predicate holds (see ``Splitter``)."""
        return Splitter(self, name)

    def merge(self, other: Stream, name: str | None = None) -> Stream:
        """One stream of the records of both; per-partition input order is kept."""
        if other.builder is not self.builder:
            raise TopologyError("merge() needs two streams of the same StreamsBuilder")
        node = self.builder.add(MergeNode, [self.node, other.node], name)
        return Stream(self.builder, node, self.key_serde, self.value_serde)

    def to(
        self,
        topic: str | Callable[[Any, Any], str],
        *,
        key_serde: SerdeLike = None,
        value_serde: SerdeLike = None,
        partitioner: Callable[[Any, Any, int], int] | None = None,
        name: str | None = None,
    ) -> None:
        """Write to ``topic``, or to the topic ``topic(key, value)`` names for each record.

        ``partitioner(key, value, partition_count)`` overrides Kafka's default
        murmur2-of-the-key placement.
        """
        if isinstance(topic, str):
            fixed, extractor = topic, None
        elif callable(topic):
            fixed, extractor = None, topic
        else:
            raise TopologyError(f"to() takes a topic name or a function choosing one, got {topic!r}")
        self.builder.add(SinkNode, [self.node], name, topic=fixed, extractor=extractor, partitioner=partitioner,
                         key_serde=resolve_serde(key_serde, self.key_serde),
                         value_serde=resolve_serde(value_serde, self.value_serde))

    def repartition(
        self,
        name: str | None = None,
        *,
        key_serde: SerdeLike = None,
        value_serde: SerdeLike = None,
        partitions: int | None = None,
    ) -> Stream:
        """Send the stream through an internal topic so records are partitioned by their current key."""
        key = resolve_serde(key_serde, self.key_serde)
        value = resolve_serde(value_serde, self.value_serde)
        base = name or self.builder.generated_name("repartition")
        source = through_repartition_topic(self.builder, self.node, base, key, value, partitions)
        return Stream(self.builder, source, key, value)

    def group_by_key(
        self, *, key_serde: SerdeLike = None, value_serde: SerdeLike = None, name: str | None = None
    ) -> GroupedStream:
        """Group by the current key, for aggregations; repartitions first if the key changed."""
        from streamer.dsl.grouped import GroupedStream

        key = resolve_serde(key_serde, self.key_serde)
        value = resolve_serde(value_serde, self.value_serde)
        return GroupedStream(self.builder, self.node, key, value, name)

    def group_by(
        self,
        selector: Callable[[Any, Any], Any],
        *,
        key_serde: SerdeLike = None,
        value_serde: SerdeLike = None,
        name: str | None = None,
    ) -> GroupedStream:
        """Group by ``selector(key, value)``; always repartitions."""
        return self.select_key(selector).group_by_key(key_serde=key_serde, value_serde=value_serde, name=name)

    def join(self, other: Stream | Table | GlobalTable, joiner: Callable[[Any, Any], Any],
             windows: JoinWindows | None = None, *, key_selector: Callable[[Any, Any], Any] | None = None,
             value_serde: SerdeLike = None, name: str | None = None) -> Stream:
        """Records of both sides with equal keys, combined by ``joiner(left_value, right_value)``.

        ``other`` is a stream (then ``windows``, a ``JoinWindows``, bounds how far apart in time
        two records may be), a table (each record meets the table row of its key as of its
        time), or a global table (``key_selector(key, value)`` gives the row's key).
        ``value_serde`` is the serde of the joined values (for the stores a join keeps).
        See docs/joins.md.
        """
        return _join(self, other, joiner, windows, key_selector, value_serde, name, "inner")

    def left_join(self, other: Stream | Table | GlobalTable, joiner: Callable[[Any, Any], Any],
                  windows: JoinWindows | None = None, *, key_selector: Callable[[Any, Any], Any] | None = None,
                  value_serde: SerdeLike = None, name: str | None = None) -> Stream:
        """As ``join``, and every record of this stream without a match too, with ``None`` for the other side."""
        return _join(self, other, joiner, windows, key_selector, value_serde, name, "left")

    def outer_join(self, other: Stream, joiner: Callable[[Any, Any], Any], windows: JoinWindows, *,
                   value_serde: SerdeLike = None, name: str | None = None) -> Stream:
        """Windowed join of two streams keeping the unmatched records of both sides (``None`` for the other)."""
        return _join(self, other, joiner, windows, None, value_serde, name, "outer")

    def to_table(self, name: str | None = None, *, value_serde: SerdeLike = None) -> Table:
        """The latest value per key of this stream, materialized in store ``name``."""
        from streamer.dsl.table import Table

        value = resolve_serde(value_serde, self.value_serde)
        upstream = self.node
        if self.node.key_changed:
            base = name or self.builder.generated_name("to-table")
            upstream = through_repartition_topic(self.builder, self.node, base, self.key_serde, value, None)
        store_name = name or self.builder.generated_name("table-store")
        store = self.builder.add_store(store_name, "key_value", self.key_serde, value, timestamped=True)
        node = self.builder.add(TableSourceNode, [upstream], store=store, named=name is not None)
        return Table(self.builder, node, self.key_serde, value, store)


class Splitter:
    """Builds the branches of ``Stream.split``: ``.branch(...)`` per route, then a default or none.

    ``default_branch()`` and ``no_default_branch()`` return the branches as a dict
    from branch name to Stream.
    """

    def __init__(self, stream: Stream, name: str | None) -> None:
        self.stream = stream
        self.name = name
        self.branches: list[tuple[str, Callable[[Any, Any], Any]]] = []

    def branch(self, predicate: Callable[[Any, Any], Any], name: str | None = None) -> Splitter:
        if not callable(predicate):
            raise TopologyError(f"branch() needs a predicate function, got {predicate!r}")
        self.branches.append((name or str(len(self.branches) + 1), predicate))
        return self

    def default_branch(self, name: str = "default") -> dict[str, Stream]:
        return self._finish(name)

    def no_default_branch(self) -> dict[str, Stream]:
        return self._finish(None)

    def _finish(self, default: str | None) -> dict[str, Stream]:
        if not self.branches:
            raise TopologyError("split() needs at least one branch() before default_branch()")
        builder = self.stream.builder
        predicates = [p for _, p in self.branches]
        split = builder.add(SplitNode, [self.stream.node], self.name, predicates=predicates,
                            has_default=default is not None, is_async=any(is_async_callable(p) for p in predicates))
        names = [n for n, _ in self.branches] + ([default] if default is not None else [])
        result: dict[str, Stream] = {}
        for branch_name in names:
            if branch_name in result:
                raise TopologyError(f"split() has two branches named {branch_name!r}")
            node = builder.add(BranchNode, [split], f"{split.name}-{branch_name}")
            result[branch_name] = Stream(builder, node, self.stream.key_serde, self.stream.value_serde)
        return result


def through_repartition_topic(
    builder: StreamsBuilder,
    upstream: LogicalNode,
    base_name: str,
    key_serde: Serde,
    value_serde: Serde,
    partitions: int | None,
) -> LogicalNode:
    """Write ``upstream`` to internal topic ``<base_name>-repartition`` and read it back.

    The sink and the new source are not linked by an edge, which is what splits the
    topology into two sub-topologies at this point.
    """
    topic = f"{base_name}-repartition"
    builder.add(SinkNode, [upstream], f"{base_name}-repartition-sink", topic=topic, internal=True,
                key_serde=key_serde, value_serde=value_serde, partitions=partitions)
    return builder.add(SourceNode, [], f"{base_name}-repartition-source", key_changed=False, topics=(topic,),
                       internal=True, key_serde=key_serde, value_serde=value_serde, partitions=partitions)


def _join(stream: Stream, other: Any, joiner: Callable[[Any, Any], Any], windows: Any,
          key_selector: Callable[[Any, Any], Any] | None, value_serde: SerdeLike, name: str | None,
          kind: JoinKind) -> Stream:
    """Pick the join by what ``other`` is; each kind lives in its own module of streamer.dsl."""
    from streamer.dsl.global_table import GlobalTable
    from streamer.dsl.table import Table

    if isinstance(other, Stream):
        if windows is None:
            raise TopologyError("a stream-stream join needs windows: "
                                "pass JoinWindows.of_time_difference_and_grace(...)")
        from streamer.dsl.stream_stream_join import join_streams

        return join_streams(stream, other, joiner, windows, value_serde, name, kind)
    if windows is not None:
        raise TopologyError("windows apply to stream-stream joins only; a table join reads the table's current row")
    if kind == "outer":
        raise TopologyError("outer_join joins two streams; a stream joins a table with join or left_join")
    if isinstance(other, GlobalTable):
        if key_selector is None:
            raise TopologyError("a join with a global table needs key_selector=fn(key, value) giving the table key")
        from streamer.dsl.global_table import join_global_table

        return join_global_table(stream, other, joiner, key_selector, name, kind)
    if key_selector is not None:
        raise TopologyError("key_selector is for joins with a global table; re-key the stream with select_key first")
    if isinstance(other, Table):
        from streamer.dsl.stream_table_join import join_stream_table

        return join_stream_table(stream, other, joiner, value_serde, name, kind)
    raise TopologyError(f"join() takes a Stream, a Table or a GlobalTable, got {other!r}")
