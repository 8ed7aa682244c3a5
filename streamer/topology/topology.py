"""The compiled topology: sub-topologies of named processors, their topics and stores.

This is what the runtime and the test driver run. It holds processor factories, not
processor instances: every task builds its own processors from the same specs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

from streamer.processors.api import Processor
from streamer.serde import BYTES, Serde


def internal_topic_name(application_id: str, suffix: str) -> str:
    """Internal topics (repartition, changelog) are prefixed by the application id."""
    return f"{application_id}-{suffix}"


#: key_value: latest value per key; window: (key, window start); session: (key, start, end);
#: buffer: entries ordered by time, for suppression and emit-on-close.
StoreKind = Literal["key_value", "window", "session", "buffer"]
STORE_KINDS: tuple[StoreKind, ...] = ("key_value", "window", "session", "buffer")
#: Kafka Streams keeps windowed changelogs one day longer than the store retains windows.
CHANGELOG_RETENTION_EXTRA_MS = 86_400_000


@dataclass(frozen=True)
class StoreSpec:
    """A state store every task of a sub-topology gets its own instance of.

    ``retention_ms`` is how long window and session stores keep windows (by stream
    time); ``timestamped`` stores keep each value's timestamp in front of its bytes
    (``streamer.state.timestamped``); ``retain_duplicates`` window stores keep every
    record put at the same key and time (stream-stream joins).
    """

    name: str
    kind: StoreKind = "key_value"
    logged: bool = True
    key_serde: Serde = BYTES
    value_serde: Serde = BYTES
    retention_ms: int | None = None
    timestamped: bool = False
    retain_duplicates: bool = False

    def __post_init__(self) -> None:
        if self.kind not in STORE_KINDS:
            raise ValueError(f"store {self.name}: unknown kind {self.kind!r}; kinds are {STORE_KINDS}")
        if self.kind in ("window", "session") and (self.retention_ms is None or self.retention_ms < 0):
            raise ValueError(f"{self.kind} store {self.name} needs a retention_ms >= 0")

    def changelog_topic(self, application_id: str) -> str:
        return internal_topic_name(application_id, f"{self.name}-changelog")

    def changelog_config(self) -> dict[str, str]:
        """Topic settings its changelog must have: windows expire, so their changelogs delete too."""
        if self.kind in ("window", "session"):
            assert self.retention_ms is not None
            return {"cleanup.policy": "compact,delete",
                    "retention.ms": str(self.retention_ms + CHANGELOG_RETENTION_EXTRA_MS)}
        return {"cleanup.policy": "compact"}


@dataclass(frozen=True)
class GlobalStoreSpec:
    """A store every worker keeps whole: all partitions of ``topic``, which is also its changelog.

    ``store`` holds the topic's records as they are (key and value bytes, no timestamp,
    no changelog of its own); tasks read it, only the worker's global updater writes it.
    """

    store: StoreSpec
    topic: str

    @property
    def name(self) -> str:
        return self.store.name


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
    """An internal topic between sub-topologies; ``partitions`` None means "as the writer's input".

    ``follows_reader``: partitioned as the reading sub-topology's other inputs instead,
    for topics that must be co-partitioned with what their reader joins them with (a
    foreign-key join's subscription and response topics).
    """

    suffix: str
    partitions: int | None
    writer: int
    reader: int
    follows_reader: bool = False


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
    #: Global tables (``builder.global_table``): kept whole by every worker, outside any task.
    global_stores: list[GlobalStoreSpec] = field(default_factory=list)

    def stores(self) -> list[StoreSpec]:
        return [store for sub in self.subtopologies for store in sub.stores]

    def describe(self) -> str:
        """A readable outline: sub-topologies, processors with their edges, topics and stores."""
        from streamer.topology.describe import describe_topology

        return describe_topology(self)

    def __str__(self) -> str:
        return self.describe()
