"""The logical graph the DSL builds: one typed node per operation, nothing executable.

The compiler (``streamer.dsl.compiler``) turns these nodes into processors, topics and
stores; the nodes themselves only record what the user asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from streamer.serde import Serde
from streamer.topology.topology import StoreSpec

Function = Callable[..., Any]


@dataclass(eq=False, kw_only=True)
class LogicalNode:
    """One DSL operation and its edges.

    ``key_changed`` marks a node whose output key may no longer match the partition its
    input came from, so grouping or joining after it needs a repartition topic.
    """

    name: str = ""
    order: int = 0
    parents: list[LogicalNode] = field(default_factory=list)
    children: list[LogicalNode] = field(default_factory=list)
    key_changed: bool = False

    #: The operation's name, for generated node names and ``describe()``.
    @property
    def op(self) -> str:
        raise NotImplementedError

    @property
    def stores(self) -> tuple[str, ...]:
        """Stores the operation reads or writes; they live in the same task as the node."""
        return ()

    @property
    def detail(self) -> str:
        """A short note for ``describe()``."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


@dataclass(eq=False, kw_only=True)
class SourceNode(LogicalNode):
    """Reads ``topics`` (or every topic matching ``pattern``); internal topics get the app prefix."""

    topics: tuple[str, ...]
    pattern: str | None = None
    internal: bool = False
    key_serde: Serde
    value_serde: Serde
    #: Partition count of an internal topic; None means "as the writing sub-topology's input".
    partitions: int | None = None
    #: ``fn(key, value, record_timestamp) -> int``: the record's event time; None keeps the record's own.
    timestamp_extractor: Function | None = None

    @property
    def op(self) -> str:
        return "source"


@dataclass(eq=False, kw_only=True)
class SinkNode(LogicalNode):
    """Writes to ``topic``, or to the topic ``extractor(key, value)`` names per record."""

    topic: str | None
    extractor: Function | None = None
    partitioner: Function | None = None
    internal: bool = False
    key_serde: Serde
    value_serde: Serde
    partitions: int | None = None
    #: An internal topic partitioned like the reading sub-topology's other inputs, not the writer's
    #: (a foreign-key join's subscription and response topics).
    partitions_follow_reader: bool = False

    @property
    def op(self) -> str:
        return "sink"


@dataclass(eq=False, kw_only=True)
class FunctionNode(LogicalNode):
    """A stateless operation that calls a user function per record (possibly ``async``)."""

    function: Function
    is_async: bool = False
    #: For the ``*_values`` operations: the function takes (key, value) instead of value.
    with_key: bool = False

    @property
    def detail(self) -> str:
        return "async" if self.is_async else ""


@dataclass(eq=False, kw_only=True)
class FilterNode(FunctionNode):
    negate: bool = False

    @property
    def op(self) -> str:
        return "filter_not" if self.negate else "filter"


@dataclass(eq=False, kw_only=True)
class MapNode(FunctionNode):
    @property
    def op(self) -> str:
        return "map"


@dataclass(eq=False, kw_only=True)
class MapValuesNode(FunctionNode):
    @property
    def op(self) -> str:
        return "map_values"


@dataclass(eq=False, kw_only=True)
class FlatMapNode(FunctionNode):
    @property
    def op(self) -> str:
        return "flat_map"


@dataclass(eq=False, kw_only=True)
class FlatMapValuesNode(FunctionNode):
    @property
    def op(self) -> str:
        return "flat_map_values"


@dataclass(eq=False, kw_only=True)
class SelectKeyNode(FunctionNode):
    @property
    def op(self) -> str:
        return "select_key"


@dataclass(eq=False, kw_only=True)
class PeekNode(FunctionNode):
    #: ``foreach``: the stream ends here.
    terminal: bool = False

    @property
    def op(self) -> str:
        return "foreach" if self.terminal else "peek"


@dataclass(eq=False, kw_only=True)
class SplitNode(LogicalNode):
    """Routes each record to the first branch whose predicate holds; children are BranchNodes."""

    predicates: list[Function]
    has_default: bool
    is_async: bool = False

    @property
    def detail(self) -> str:
        return f"{len(self.predicates)} branches" + (", async" if self.is_async else "")

    @property
    def op(self) -> str:
        return "split"


@dataclass(eq=False, kw_only=True)
class BranchNode(LogicalNode):
    @property
    def op(self) -> str:
        return "branch"


@dataclass(eq=False, kw_only=True)
class MergeNode(LogicalNode):
    @property
    def op(self) -> str:
        return "merge"


@dataclass(eq=False, kw_only=True)
class ProcessNode(LogicalNode):
    """A user ``RecordProcessor`` with the stores it declared."""

    factory: Function
    store_names: tuple[str, ...] = ()

    @property
    def op(self) -> str:
        return "process"

    @property
    def stores(self) -> tuple[str, ...]:
        return self.store_names


@dataclass(eq=False, kw_only=True)
class StoreNode(LogicalNode):
    """An operation that owns one store, declared in the graph's ``stores``."""

    store: str

    @property
    def stores(self) -> tuple[str, ...]:
        return (self.store,)


@dataclass(eq=False, kw_only=True)
class TableSourceNode(StoreNode):
    """Materializes a changelog stream: the latest value per key.

    ``named``: the user named the table's store, which Kafka Streams treats as
    materialized for queries; it decides whether filters below send deletes for rows
    that never matched.
    """

    named: bool = False

    @property
    def op(self) -> str:
        return "table_source"


@dataclass(eq=False, kw_only=True)
class StreamAggregateNode(StoreNode):
    """count, reduce or aggregate of a grouped stream; ``initializer`` None means reduce."""

    initializer: Function | None
    aggregator: Function

    @property
    def op(self) -> str:
        return "stream_aggregate"


@dataclass(eq=False, kw_only=True)
class TableAggregateNode(StoreNode):
    """count, reduce or aggregate of a grouped table, with a subtractor for rows that leave a group."""

    initializer: Function | None
    adder: Function
    subtractor: Function

    @property
    def op(self) -> str:
        return "table_aggregate"


@dataclass(eq=False, kw_only=True)
class TableFilterNode(LogicalNode):
    predicate: Function
    negate: bool = False

    @property
    def op(self) -> str:
        return "table_filter"


@dataclass(eq=False, kw_only=True)
class TableMapValuesNode(LogicalNode):
    mapper: Function
    with_key: bool = False

    @property
    def op(self) -> str:
        return "table_map_values"


@dataclass(eq=False, kw_only=True)
class ToStreamNode(LogicalNode):
    @property
    def op(self) -> str:
        return "to_stream"


@dataclass(eq=False, kw_only=True)
class TableGroupByNode(LogicalNode):
    selector: Function

    @property
    def op(self) -> str:
        return "table_group_by"


@dataclass
class LogicalGraph:
    """All nodes in creation order plus the stores they declared."""

    nodes: list[LogicalNode] = field(default_factory=list)
    stores: dict[str, StoreSpec] = field(default_factory=dict)
