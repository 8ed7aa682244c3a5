"""The compiled topology: sub-topologies of named processors, their topics and stores.

This is what the runtime and the test driver run. It holds processor factories, not
processor instances: every task builds its own processors from the same specs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from streamer.processors.api import Processor
from streamer.serde import BYTES, Serde


def internal_topic_name(application_id: str, suffix: str) -> str:
    """Internal topics (repartition, changelog) are prefixed by the application id."""
    return f"{application_id}-{suffix}"


@dataclass(frozen=True)
class StoreSpec:
    """A state store every task of a sub-topology gets its own instance of."""

    name: str
    kind: str = "key_value"
    logged: bool = True
    key_serde: Serde = BYTES
    value_serde: Serde = BYTES

    def changelog_topic(self, application_id: str) -> str:
        return internal_topic_name(application_id, f"{self.name}-changelog")


@dataclass
class NodeSpec:
    """A named processor: how to build it, where its output goes, which stores it uses."""

    name: str
    op: str
    factory: Callable[[], Processor]
    children: list[str] = field(default_factory=list)
    stores: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class SourceSpec:
    """A source node and the topics (or pattern) it reads; internal topics get the app prefix."""

    node: str
    topics: tuple[str, ...]
    pattern: str | None
    internal: bool

    def resolved_topics(self, application_id: str) -> list[str]:
        if self.internal:
            return [internal_topic_name(application_id, t) for t in self.topics]
        return list(self.topics)


@dataclass(frozen=True)
class SinkSpec:
    """A topic a sub-topology writes; ``topic`` is None where a function picks it per record."""

    node: str
    topic: str | None
    internal: bool

    def resolved_topic(self, application_id: str) -> str | None:
        if self.topic is None or not self.internal:
            return self.topic
        return internal_topic_name(application_id, self.topic)


@dataclass(frozen=True)
class RepartitionTopicSpec:
    """An internal topic between sub-topologies; ``partitions`` None means "as the writer's input"."""

    suffix: str
    partitions: int | None
    writer: int
    reader: int


@dataclass
class SubTopology:
    """Nodes connected without crossing a topic; one task per input partition runs them."""

    id: int
    nodes: list[NodeSpec]
    sources: list[SourceSpec]
    sinks: list[SinkSpec]
    stores: list[StoreSpec]

    def source_topics(self, application_id: str) -> list[str]:
        return [t for source in self.sources for t in source.resolved_topics(application_id)]


@dataclass
class Topology:
    """Everything ``streamer run`` needs to know about an application's processing."""

    subtopologies: list[SubTopology]
    repartition_topics: list[RepartitionTopicSpec]

    def stores(self) -> list[StoreSpec]:
        return [store for sub in self.subtopologies for store in sub.stores]

    def describe(self) -> str:
        """A readable outline: sub-topologies, processors with their edges, topics and stores."""
        from streamer.topology.describe import describe_topology

        return describe_topology(self)

    def __str__(self) -> str:
        return self.describe()
