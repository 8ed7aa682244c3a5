"""What tests read back: deserialized records, and which serdes decode each topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from streamer.errors import StreamerError
from streamer.processors.sink import Sink
from streamer.processors.source import Source
from streamer.record import Headers
from streamer.serde import BYTES, Serde, SerdeLike, resolve_serde
from streamer.state.typed_store import TimestampedValueSerde

if TYPE_CHECKING:
    from streamer.testing.task import DriverTask

SerdePair = tuple[Serde, Serde]


@dataclass(frozen=True)
class OutputRecord:
    """A record read from a topic, deserialized, with where and when it was written."""

    topic: str
    key: Any
    value: Any
    timestamp: int
    headers: Headers | None
    partition: int
    offset: int


class TopicSerdes:
    """The serdes each topic is written with, taken from the tasks' own sources, sinks and stores.

    A topic written by sinks with different serdes, or only by sinks that choose their
    topic per record with different serdes, has no single answer: the reader must say.
    """

    def __init__(self, tasks: Iterable[DriverTask], application_id: str, dead_letter_topic: str) -> None:
        self._fixed: dict[str, SerdePair | None] = {}
        self._chosen: dict[tuple[int, int], SerdePair] = {}
        tasks = list(tasks)
        for task in tasks:
            for spec in task.subtopology.sinks:
                sink = task.graph.processor_as(task.graph.index_of(spec.node), Sink)
                pair = (sink.key_serde, sink.value_serde)
                topic = spec.resolved_topic(application_id)
                if topic is None:
                    self._chosen[(id(pair[0]), id(pair[1]))] = pair
                else:
                    self._add(topic, pair)
            for store in task.subtopology.stores:
                value_serde = TimestampedValueSerde(store.value_serde) if store.timestamped else store.value_serde
                self._add(store.changelog_topic(application_id), (store.key_serde, value_serde))
        self._fixed.setdefault(dead_letter_topic, (BYTES, BYTES))
        for task in tasks:
            for topic, index in task.sources.items():
                self.add_source(topic, task.source_processors[index])

    def add_source(self, topic: str, source: Source) -> None:
        """Input topics decode with their source's serdes, unless a sink writes them too."""
        self._fixed.setdefault(topic, (source.key_serde, source.value_serde))

    def _add(self, topic: str, pair: SerdePair) -> None:
        known = self._fixed.get(topic, pair)
        same = known is not None and known[0] is pair[0] and known[1] is pair[1]
        self._fixed[topic] = pair if same else None

    def knows(self, topic: str) -> bool:
        """Whether the topology may write ``topic`` (any name may, if a sink picks topics per record)."""
        return topic in self._fixed or bool(self._chosen)

    def known_topics(self) -> list[str]:
        return sorted(self._fixed)

    def for_reading(self, topic: str, key_serde: SerdeLike = None, value_serde: SerdeLike = None) -> SerdePair:
        """The caller's serdes, else the writer's; an error says what to pass when that is unclear."""
        pair = self._fixed[topic] if topic in self._fixed else self._single_chosen()
        if pair is None and (key_serde is None or value_serde is None):
            raise StreamerError(
                f"cannot tell which serdes decode topic {topic!r}: sinks with different serdes (or that pick "
                "their topic per record) may write it; pass key_serde= and value_serde="
            )
        default_key, default_value = pair or (BYTES, BYTES)
        return resolve_serde(key_serde, default_key), resolve_serde(value_serde, default_value)

    def _single_chosen(self) -> SerdePair | None:
        return next(iter(self._chosen.values())) if len(self._chosen) == 1 else None
