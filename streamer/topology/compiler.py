"""Turns the DSL's logical graph into a Topology of processors, topics and stores.

Sub-topologies are the connected parts of the graph once it is cut at internal
topics (a repartition sink and its source share no edge); nodes sharing a store are
kept together because a store lives in exactly one task.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from streamer.dsl.graph import LogicalGraph, LogicalNode
from streamer.errors import TopologyError
from streamer.processors.api import Processor
from streamer.processors.async_ops import AsyncOperation
from streamer.processors.sink import Sink
from streamer.processors.source import Source
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
from streamer.topology.stateful_ops import stateful_factory
from streamer.topology.topology import (
    NodeSpec,
    RepartitionTopicSpec,
    SinkSpec,
    SourceSpec,
    SubTopology,
    Topology,
)

Factory = Callable[[], Processor]


def _async_operation(node: LogicalNode) -> str:
    with_key = node.params.get("with_key", False)
    return f"{node.op}_with_key" if with_key else node.op


def _stateless_factory(node: LogicalNode) -> Factory:
    p = node.params
    if p.get("is_async"):
        return partial(AsyncOperation, node.name, _async_operation(node), p["function"])
    fn = p.get("function")
    builders: dict[str, Callable[[], Factory]] = {
        "filter": lambda: partial(Filter, node.name, fn),
        "filter_not": lambda: partial(Filter, node.name, fn, True),
        "map": lambda: partial(Map, node.name, fn),
        "map_values": lambda: partial(MapValues, node.name, fn, p.get("with_key", False)),
        "flat_map": lambda: partial(FlatMap, node.name, fn),
        "flat_map_values": lambda: partial(FlatMapValues, node.name, fn, p.get("with_key", False)),
        "select_key": lambda: partial(SelectKey, node.name, fn),
        "peek": lambda: partial(Peek, node.name, fn),
        "foreach": lambda: partial(Peek, node.name, fn, True),
    }
    return builders[node.op]()


def _factory(graph: LogicalGraph, node: LogicalNode) -> tuple[Factory, str]:
    """The processor factory of a node and a short detail for ``describe()``."""
    p = node.params
    if node.op == "source":
        return partial(Source, node.name, p["key_serde"], p["value_serde"]), ""
    if node.op == "sink":
        factory = partial(
            Sink,
            node.name,
            p["topic"],
            p["key_serde"],
            p["value_serde"],
            internal=p["internal"],
            extractor=p["extractor"],
            partitioner=p["partitioner"],
        )
        return factory, ""
    if node.op == "split":
        detail = f"{len(p['predicates'])} branches" + (", async" if p["is_async"] else "")
        return partial(Split, node.name, p["predicates"], p["has_default"], p["is_async"]), detail
    if node.op in ("merge", "branch"):
        return partial(PassThrough, node.name), ""
    stateful = stateful_factory(graph, node)
    if stateful is not None:
        return stateful, ""
    try:
        factory = _stateless_factory(node)
    except KeyError:
        raise TopologyError(f"no processor for operation {node.op!r} (node {node.name})") from None
    return factory, "async" if p.get("is_async") else ""


class _Components:
    """Union-find over node names."""

    def __init__(self, names: list[str]) -> None:
        self.parent = {n: n for n in names}

    def find(self, name: str) -> str:
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _check_sources(graph: LogicalGraph) -> None:
    seen: dict[str, str] = {}
    for node in graph.nodes:
        if node.op != "source":
            continue
        for topic in node.params["topics"]:
            if topic in seen:
                raise TopologyError(
                    f"topic {topic!r} is read by two sources ({seen[topic]} and {node.name}); "
                    "read it once and reuse the stream (split or branch it if needed)"
                )
            seen[topic] = node.name
    if not seen and not any(n.op == "source" and n.params["pattern"] for n in graph.nodes):
        raise TopologyError("the topology reads no topic: add builder.stream(...) or builder.table(...)")


def _group(graph: LogicalGraph) -> list[list[LogicalNode]]:
    components = _Components([n.name for n in graph.nodes])
    by_store: dict[str, str] = {}
    for node in graph.nodes:
        for parent in node.parents:
            components.union(parent.name, node.name)
        for store in node.stores:
            if store in by_store:
                components.union(by_store[store], node.name)
            by_store[store] = node.name
    groups: dict[str, list[LogicalNode]] = {}
    for node in graph.nodes:
        groups.setdefault(components.find(node.name), []).append(node)
    ordered = sorted(groups.values(), key=lambda nodes: min(n.order for n in nodes))
    return [sorted(nodes, key=lambda n: n.order) for nodes in ordered]


def compile_graph(graph: LogicalGraph) -> Topology:
    """Compile a logical graph; raises TopologyError with what to change if it cannot run."""
    _check_sources(graph)
    subtopologies: list[SubTopology] = []
    sub_of: dict[str, int] = {}
    for sub_id, nodes in enumerate(_group(graph)):
        specs, sources, sinks, store_names = [], [], [], []
        for node in nodes:
            factory, detail = _factory(graph, node)
            specs.append(NodeSpec(node.name, node.op, factory, [c.name for c in node.children], node.stores, detail))
            sub_of[node.name] = sub_id
            if node.op == "source":
                p = node.params
                sources.append(SourceSpec(node.name, tuple(p["topics"]), p["pattern"], p["internal"]))
            elif node.op == "sink":
                sinks.append(SinkSpec(node.name, node.params["topic"], node.params["internal"]))
            store_names.extend(s for s in node.stores if s not in store_names)
        stores = [graph.stores[name] for name in store_names]
        subtopologies.append(SubTopology(sub_id, specs, sources, sinks, stores))
    return Topology(subtopologies, _repartition_topics(graph, sub_of))


def _repartition_topics(graph: LogicalGraph, sub_of: dict[str, int]) -> list[RepartitionTopicSpec]:
    readers = {
        topic: node
        for node in graph.nodes
        if node.op == "source" and node.params["internal"]
        for topic in node.params["topics"]
    }
    specs = []
    for node in graph.nodes:
        if node.op == "sink" and node.params["internal"]:
            topic = node.params["topic"]
            reader = readers[topic]
            partitions: Any = node.params.get("partitions")
            specs.append(RepartitionTopicSpec(topic, partitions, sub_of[node.name], sub_of[reader.name]))
    return specs
