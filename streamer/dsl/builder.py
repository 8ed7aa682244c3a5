"""StreamsBuilder: the entry point of the DSL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from streamer.dsl.functions import sync_function
from streamer.dsl.nodes import LogicalGraph, LogicalNode, SourceNode, TableSourceNode
from streamer.errors import TopologyError
from streamer.serde import Serde, SerdeLike, resolve_serde
from streamer.topology.topology import GlobalStoreSpec, StoreKind, StoreSpec

if TYPE_CHECKING:
    from streamer.dsl.global_table import GlobalTable
    from streamer.dsl.stream import Stream
    from streamer.dsl.table import Table
    from streamer.topology.topology import Topology

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
N = TypeVar("N", bound=LogicalNode)
#: ``fn(key, value, record_timestamp) -> int``: a record's event time in ms.
TimestampExtractor = Callable[[Any, Any, int], int]


class StreamsBuilder:
    """Collects streams, tables and their operations into a logical graph; ``build()`` compiles it."""

    def __init__(self) -> None:
        self.graph = LogicalGraph()
        self._names: set[str] = set()
        self.global_stores: list[GlobalStoreSpec] = []

    def stream(
        self,
        topics: str | Sequence[str] | None = None,
        *,
        pattern: str | None = None,
        key_serde: SerdeLike = None,
        value_serde: SerdeLike = None,
        timestamp_extractor: TimestampExtractor | None = None,
        name: str | None = None,
    ) -> Stream:
        """A stream of the records in ``topics`` (or in every topic matching ``pattern``).

        ``timestamp_extractor(key, value, record_timestamp)`` gives each record's event
        time (ms) from its contents; by default it is the Kafka record's timestamp.
        """
        from streamer.dsl.stream import Stream

        if (topics is None) == (pattern is None):
            raise TopologyError("stream() takes either topics or pattern, not both and not neither")
        names = (topics,) if isinstance(topics, str) else tuple(topics or ())
        if pattern is not None:
            re.compile(pattern)
        key, value = resolve_serde(key_serde), resolve_serde(value_serde)
        node = self.add(SourceNode, [], name, topics=names, pattern=pattern, key_serde=key, value_serde=value,
                        timestamp_extractor=sync_function(timestamp_extractor))
        return Stream(self, node, key, value)

    def table(
        self,
        topic: str,
        *,
        key_serde: SerdeLike = None,
        value_serde: SerdeLike = None,
        timestamp_extractor: TimestampExtractor | None = None,
        name: str | None = None,
    ) -> Table:
        """The latest value per key of a topic, materialized in store ``name`` (tombstones delete)."""
        from streamer.dsl.table import Table

        key, value = resolve_serde(key_serde), resolve_serde(value_serde)
        source = self.add(SourceNode, [], topics=(topic,), key_serde=key, value_serde=value,
                          timestamp_extractor=sync_function(timestamp_extractor))
        store = self.add_store(name or f"{topic}-table", "key_value", key, value, timestamped=True)
        node = self.add(TableSourceNode, [source], store=store, named=name is not None)
        return Table(self, node, key, value, store)

    def global_table(self, topic: str, *, key_serde: SerdeLike = None, value_serde: SerdeLike = None,
                     name: str | None = None) -> GlobalTable:
        """Every partition of ``topic`` in a store (``name``) on every worker, for joins on any key.

        No co-partitioning and no changelog: the topic is the changelog. See docs/joins.md.
        """
        from streamer.dsl.global_table import GlobalTable, global_table_spec

        spec = global_table_spec(topic, self._claim(name or f"{topic}-global", "store"), resolve_serde(key_serde),
                                 resolve_serde(value_serde))
        self.global_stores.append(spec)
        return GlobalTable(self, spec)

    def add_state_store(self, name: str, *, key_serde: SerdeLike = None, value_serde: SerdeLike = None,
                        logged: bool = True) -> str:
        """Declare a key-value store for ``Stream.process``; ``logged`` stores get a changelog topic."""
        return self.add_store(name, "key_value", resolve_serde(key_serde), resolve_serde(value_serde), logged)

    def build(self) -> Topology:
        """Compile the graph into a runnable topology."""
        from streamer.dsl.compiler import compile_graph
        from streamer.dsl.global_table import check_global_tables

        topology = compile_graph(self.graph)
        topology.global_stores = check_global_tables(self.graph, self.global_stores)
        return topology

    # The methods below are for the DSL classes, not for users.

    def add(self, node_type: type[N], parents: list[LogicalNode], name: str | None = None, *,
            key_changed: bool | None = None, **fields: Any) -> N:
        """Add an operation below ``parents``; key-changed-ness is inherited unless given."""
        order = len(self.graph.nodes)
        inherited = any(parent.key_changed for parent in parents)
        node = node_type(order=order, parents=list(parents),
                         key_changed=inherited if key_changed is None else key_changed, **fields)
        node.name = self._claim(name or f"{node.op}-{order}", "processor")
        for parent in parents:
            parent.children.append(node)
        self.graph.nodes.append(node)
        return node

    def add_store(self, name: str, kind: StoreKind, key_serde: Serde, value_serde: Serde, logged: bool = True,
                  **spec: Any) -> str:
        store = self._claim(name, "store")
        self.graph.stores[store] = StoreSpec(store, kind, logged, key_serde, value_serde, **spec)
        return store

    def generated_name(self, suffix: str) -> str:
        """A stable name for an unnamed store or topic: stable while the DSL calls keep their order."""
        return f"{suffix}-{len(self.graph.nodes)}"

    def _claim(self, name: str, what: str) -> str:
        if not _NAME.match(name):
            raise TopologyError(f"{what} name {name!r} may only use letters, digits, '.', '_' and '-'")
        key = f"{what}:{name}"
        if key in self._names:
            raise TopologyError(f"{what} name {name!r} is used twice; give each one a unique name")
        self._names.add(key)
        return name
