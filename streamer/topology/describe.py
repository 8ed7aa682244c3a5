"""Renders a compiled topology as text a person can read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamer.topology.topology import internal_topic_name

if TYPE_CHECKING:
    from streamer.topology.topology import Topology

PLACEHOLDER = "<application.id>"


def describe_topology(topology: Topology, application_id: str | None = None) -> str:
    app = application_id or PLACEHOLDER
    lines = [f"Topology ({len(topology.subtopologies)} sub-topologies)"]
    for sub in topology.subtopologies:
        lines.append(f"  Sub-topology {sub.id}")
        parents: dict[str, list[str]] = {}
        for node in sub.nodes:
            for child in node.children:
                parents.setdefault(child, []).append(node.name)
        sources = {s.node: s for s in sub.sources}
        sinks = {s.node: s for s in sub.sinks}
        for node in sub.nodes:
            if node.name in sources:
                spec = sources[node.name]
                topics = ", ".join(spec.resolved_topics(app))
                what = f"pattern: {spec.pattern}" if spec.pattern else f"topics: [{topics}]"
                lines.append(f"    Source: {node.name} ({what})")
            elif node.name in sinks:
                topic = sinks[node.name].resolved_topic(app) or "chosen per record"
                lines.append(f"    Sink: {node.name} (topic: {topic})")
            else:
                extra = f", stores: [{', '.join(node.stores)}]" if node.stores else ""
                detail = f", {node.detail}" if node.detail else ""
                lines.append(f"    Processor: {node.name} ({node.op}{detail}{extra})")
            for child in node.children:
                lines.append(f"      --> {child}")
            for parent in parents.get(node.name, []):
                lines.append(f"      <-- {parent}")
    internal = [
        f"    {internal_topic_name(app, t.suffix)} (repartition, sub-topology {t.writer} -> {t.reader})"
        for t in topology.repartition_topics
    ]
    for sub in topology.subtopologies:
        for store in sub.stores:
            kind = f"changelog of store {store.name}, sub-topology {sub.id}"
            if store.logged:
                internal.append(f"    {store.changelog_topic(app)} ({kind})")
    if internal:
        lines.append("  Internal topics")
        lines.extend(internal)
    stores = [f"    {s.name} ({s.kind}, sub-topology {sub.id})" for sub in topology.subtopologies for s in sub.stores]
    if stores:
        lines.append("  Stores")
        lines.extend(stores)
    return "\n".join(lines)
