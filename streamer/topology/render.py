"""Draws a compiled topology: as text, a Mermaid flowchart (GitHub renders it) or a Graphviz graph.

Both pictures come from one neutral graph: processors grouped by sub-topology, topics and
stores as nodes of their own, so a repartition topic shows as the one node between the
sub-topology that writes it and the one that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from streamer.topology.describe import PLACEHOLDER, describe_topology
from streamer.topology.topology import Topology

Format = Literal["text", "mermaid", "dot"]
NodeKind = Literal["processor", "source", "sink", "topic", "store"]
EdgeKind = Literal["flow", "store", "changelog"]


@dataclass
class Node:
    id: str
    label: str
    kind: NodeKind
    group: int | None  # sub-topology id, None outside every sub-topology


@dataclass
class Graph:
    """Nodes in insertion order and edges ``(from, to, kind)``; ids are made safe for both formats."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str, EdgeKind]] = field(default_factory=list)
    _ids: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, key: str, label: str, kind: NodeKind, group: int | None = None) -> str:
        """The node's id; a key already added (a topic two sub-topologies share) keeps its first node."""
        category = "topic" if kind == "topic" else "store" if kind == "store" else "node"
        ident = self._ids.get((category, key))
        if ident is None:
            ident = self._ids[(category, key)] = f"{category[0]}{len(self._ids)}"
            self.nodes[ident] = Node(ident, label, kind, group)
        return ident

    def groups(self) -> list[int]:
        return sorted({n.group for n in self.nodes.values() if n.group is not None})


def topology_graph(topology: Topology, application_id: str | None = None) -> Graph:
    """The neutral graph of a topology; internal topic names carry ``application_id`` (or a placeholder)."""
    app = application_id or PLACEHOLDER
    graph = Graph()
    global_stores = {g.name: graph.add(g.name, f"{g.name} (global)", "store") for g in topology.global_stores}
    for glob in topology.global_stores:
        graph.edges.append((graph.add(glob.topic, glob.topic, "topic"), global_stores[glob.name], "flow"))
    for sub in topology.subtopologies:
        sources = {s.node: s for s in sub.sources}
        sinks = {s.node: s for s in sub.sinks}
        stores = {s.name: graph.add(s.name, f"{s.name} ({s.kind})", "store", sub.id) for s in sub.stores}
        ids: dict[str, str] = {}
        for node in sub.nodes:
            kind: NodeKind = "source" if node.name in sources else "sink" if node.name in sinks else "processor"
            label = node.name if kind != "processor" else f"{node.name}\n{node.op}"
            ids[node.name] = graph.add(node.name, label, kind, sub.id)
        for node in sub.nodes:
            here = ids[node.name]
            graph.edges += [(here, ids[child], "flow") for child in node.children if child in ids]
            graph.edges += [(here, stores.get(name) or global_stores[name], "store")
                            for name in node.stores if name in stores or name in global_stores]
            if node.name in sources:
                spec = sources[node.name]
                topics = [f"/{spec.pattern}/"] if spec.pattern else spec.resolved_topics(app)
                graph.edges += [(graph.add(t, t, "topic"), here, "flow") for t in topics]
            if node.name in sinks:
                topic = sinks[node.name].resolved_topic(app)
                key = topic if topic is not None else f"{node.name} (chosen per record)"
                graph.edges.append((here, graph.add(key, topic or "topic chosen per record", "topic"), "flow"))
        for store in sub.stores:
            if store.logged:
                changelog = store.changelog_topic(app)
                graph.edges.append((stores[store.name], graph.add(changelog, changelog, "topic"), "changelog"))
    return graph


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


_MERMAID_SHAPES: dict[NodeKind, tuple[str, str]] = {
    "processor": ("[", "]"), "source": ("[/", "/]"), "sink": ("[\\", "\\]"),
    "topic": ("([", "])"), "store": ("[(", ")]"),
}
_MERMAID_ARROWS: dict[EdgeKind, str] = {"flow": "-->", "store": "-.-", "changelog": "-.->"}


def to_mermaid(graph: Graph) -> str:
    """A ``flowchart TB`` with one subgraph per sub-topology; topics outside, stores inside."""
    def line(node: Node) -> str:
        start, end = _MERMAID_SHAPES[node.kind]
        return f"{node.id}{start}{_mermaid_label(node.label)}{end}"

    lines = ["flowchart TB"]
    for group in graph.groups():
        lines.append(f'  subgraph sub{group}["Sub-topology {group}"]')
        lines += [f"    {line(n)}" for n in graph.nodes.values() if n.group == group]
        lines.append("  end")
    lines += [f"  {line(n)}" for n in graph.nodes.values() if n.group is None]
    lines += [f"  {a} {_MERMAID_ARROWS[kind]} {b}" for a, b, kind in graph.edges]
    return "\n".join(lines)


def _dot_label(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_SHAPES: dict[NodeKind, str] = {
    "processor": "box", "source": "invhouse", "sink": "house", "topic": "box, style=rounded", "store": "cylinder",
}
_DOT_EDGES: dict[EdgeKind, str] = {"flow": "", "store": " [style=dashed, dir=none]", "changelog": " [style=dotted]"}


def to_dot(graph: Graph) -> str:
    """A ``digraph`` with one ``cluster_`` subgraph per sub-topology."""
    def line(node: Node) -> str:
        return f"{node.id} [label={_dot_label(node.label)}, shape={_DOT_SHAPES[node.kind]}];"

    lines = ["digraph topology {", "  rankdir=TB;"]
    for group in graph.groups():
        lines.append(f"  subgraph cluster_{group} {{")
        lines.append(f'    label="Sub-topology {group}";')
        lines += [f"    {line(n)}" for n in graph.nodes.values() if n.group == group]
        lines.append("  }")
    lines += [f"  {line(n)}" for n in graph.nodes.values() if n.group is None]
    lines += [f"  {a} -> {b}{_DOT_EDGES[kind]};" for a, b, kind in graph.edges]
    lines.append("}")
    return "\n".join(lines)


def render_topology(topology: Topology, fmt: Format = "text", application_id: str | None = None) -> str:
    """The topology in the format ``streamer describe --format`` names."""
    if fmt == "text":
        return describe_topology(topology, application_id)
    graph = topology_graph(topology, application_id)
    if fmt == "mermaid":
        return to_mermaid(graph)
    if fmt == "dot":
        return to_dot(graph)
    raise ValueError(f"unknown format {fmt!r}; formats are text, mermaid, dot")
