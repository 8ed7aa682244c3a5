"""Serializes records and hands them to the task's producer, per topic."""

from __future__ import annotations

from typing import Any, Callable

from streamer.processors.api import Processor
from streamer.record import Record
from streamer.serde import Serde, serialize_many

#: ``partitioner(key, value, partition_count) -> partition`` on the deserialized record.
Partitioner = Callable[[Any, Any, int], int]
#: ``extractor(key, value) -> topic`` chooses the topic per record.
TopicExtractor = Callable[[Any, Any], str]


class Sink(Processor):
    """Writes a batch to a topic (or to the topic ``extractor`` picks per record)."""

    def __init__(
        self,
        name: str,
        topic: str | None,
        key_serde: Serde,
        value_serde: Serde,
        *,
        internal: bool = False,
        extractor: TopicExtractor | None = None,
        partitioner: Partitioner | None = None,
    ) -> None:
        super().__init__(name)
        self.topic = topic
        self.internal = internal
        self.extractor = extractor
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.partitioner = partitioner
        self._resolved = ""

    def init(self, context: Any) -> None:
        super().init(context)
        if self.topic is not None:
            self._resolved = context.resolve_topic(self.topic, self.internal)

    def process(self, records: list[Record]) -> list[Record]:
        if self.extractor is None:
            self._send(self._resolved, records)
            return []
        by_topic: dict[str, list[Record]] = {}
        for record in records:
            try:
                topic = self.extractor(record.key, record.value)
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            by_topic.setdefault(topic, []).append(record)
        for topic, batch in by_topic.items():
            self._send(topic, batch)
        return []

    def _send(self, topic: str, records: list[Record]) -> None:
        partitioner = self.partitioner
        try:
            keys = serialize_many(self.key_serde, [r.key for r in records])
            values = serialize_many(self.value_serde, [r.value for r in records])
            partitions = None
            if partitioner is not None:
                count = self.context.partition_count(topic)
                partitions = [partitioner(r.key, r.value, count) for r in records]
                if partitions and (min(partitions) < 0 or max(partitions) >= count):
                    raise ValueError("a partition out of range")
        except Exception:
            self._send_one_by_one(topic, records)
            return
        self.context.send(topic, keys, values, [r.timestamp for r in records], [r.headers for r in records], partitions)

    def _send_one_by_one(self, topic: str, records: list[Record]) -> None:
        """The slow path once a batch had a record that fails: skip it through the error handler."""
        dump_key, dump_value, partitioner = self.key_serde.serialize, self.value_serde.serialize, self.partitioner
        count = self.context.partition_count(topic) if partitioner is not None else 0
        kept: list[Record] = []
        for record in records:
            try:
                dump_key(record.key), dump_value(record.value)
                if partitioner is not None:
                    partition = partitioner(record.key, record.value, count)
                    if not 0 <= partition < count:
                        raise ValueError(f"partitioner chose partition {partition} of {topic}, which has {count}")
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            kept.append(record)
        if kept:
            self._send(topic, kept)
