"""Turns the DSL's logical graph into a Topology of processors, topics and stores.

Sub-topologies are the connected parts of the graph once it is cut at internal
topics (a repartition sink and its source share no edge); nodes sharing a store are
kept together because a store lives in exactly one task.
"""

from __future__ import annotations

from streamer.dsl.factories import processor_factory
from streamer.dsl.nodes import LogicalGraph, LogicalNode, SinkNode, SourceNode
from streamer.errors import TopologyError
from streamer.topology.topology import (
    NodeSpec,
    RepartitionTopicSpec,
    SinkSpec,
    SourceSpec,
    SubTopology,
    Topology,
)


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


def _sources(graph: LogicalGraph) -> list[SourceNode]:
    return [node for node in graph.nodes if isinstance(node, SourceNode)]


def _check_sources(graph: LogicalGraph) -> None:
    seen: dict[str, str] = {}
    for node in _sources(graph):
        for topic in node.topics:
            if topic in seen:
                raise TopologyError(
                    f"topic {topic!r} is read by two sources ({seen[topic]} and {node.name}); "
                    "read it once and reuse the stream (split or branch it if needed)"
                )
            seen[topic] = node.name
    if not seen and not any(node.pattern for node in _sources(graph)):
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
        specs: list[NodeSpec] = []
        sources: list[SourceSpec] = []
        sinks: list[SinkSpec] = []
        store_names: list[str] = []
        for node in nodes:
            specs.append(NodeSpec(node.name, node.op, processor_factory(node, graph),
                                  [c.name for c in node.children], node.stores, node.detail))
            sub_of[node.name] = sub_id
            if isinstance(node, SourceNode):
                sources.append(SourceSpec(node.name, node.topics, node.pattern, node.internal))
            elif isinstance(node, SinkNode):
                sinks.append(SinkSpec(node.name, node.topic, node.internal))
            store_names.extend(s for s in node.stores if s not in store_names)
        stores = [graph.stores[name] for name in store_names]
        subtopologies.append(SubTopology(sub_id, specs, sources, sinks, stores))
    return Topology(subtopologies, _repartition_topics(graph, sub_of))


def _repartition_topics(graph: LogicalGraph, sub_of: dict[str, int]) -> list[RepartitionTopicSpec]:
    readers = {topic: node for node in _sources(graph) if node.internal for topic in node.topics}
    return [
        RepartitionTopicSpec(node.topic, node.partitions, sub_of[node.name], sub_of[readers[node.topic].name],
                             follows_reader=node.partitions_follow_reader)
        for node in graph.nodes
        if isinstance(node, SinkNode) and node.internal and node.topic is not None
    ]
