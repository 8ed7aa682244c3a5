"""Batches a task's output records per partition and sends them with aiokafka's batch API.

Processors hand over serialized rows synchronously; the task awaits ``drain`` once
per pass, so there is one await per partition per pass and none per record.

A record too large for its topic never goes into a batch, and a topic whose
max.message.bytes is below the batch size gets batches it takes: a batch the broker
refuses would spoil the idempotent producer's partition (see streamer.runtime.production).
"""

from __future__ import annotations

import asyncio
import random
import sys
import weakref
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from streamer.errors import MissingTopicError, ProduceError
from streamer.partitioner import default_partition
from streamer.runtime.metrics import WorkerMetrics
from streamer.runtime.production import REFUSED_BEFORE_SEND, Produced, ProductionErrorHandler, refusal_hint

TopicPartitionKey = tuple[str, int]
#: keys, values, timestamps, headers, partitions (or None for the default placement)
Columns = tuple[list[Any], list[Any], list[int], list[Any], list[int] | None]

_KEY_CACHE_LIMIT = 200_000
#: aiokafka's builder takes headers as a list only; one shared empty list avoids an allocation per record.
_NO_HEADERS: list[tuple[str, bytes]] = []
#: Most bytes a record adds to a batch beyond its key, value and headers (length, attributes, deltas).
_RECORD_OVERHEAD = 21


#: Per producer, one lock per partition around ``send_batch``: tasks sharing a producer
#: (at-least-once) take turns queueing a partition's batch. aiokafka 0.14 lets several
#: waiters for one partition's queue give up long before the request timeout (its wait
#: loop subtracts the time since the first wait on every turn), so at most one may wait.
_SEND_GATES: weakref.WeakKeyDictionary[AIOKafkaProducer, dict[TopicPartitionKey, asyncio.Lock]] = (
    weakref.WeakKeyDictionary())


class RecordCollector:
    """One task's pending output: open batch builders, in-flight sends, and their results."""

    def __init__(self, producer: AIOKafkaProducer, partition_counts: dict[str, int],
                 metrics: WorkerMetrics | None = None, production: ProductionErrorHandler | None = None) -> None:
        self.producer = producer
        self.metrics = metrics
        #: the policy for records the broker would refuse; None: no checks, a refused batch fails the task
        self.production = production
        self._gates = _SEND_GATES.setdefault(producer, {})
        self.partition_counts = partition_counts
        self._builders: dict[str, list[BatchBuilder | None]] = {}
        self._full: list[tuple[TopicPartitionKey, BatchBuilder]] = []
        self._unplaced: list[tuple[str, Columns]] = []
        self._in_flight: list[tuple[TopicPartitionKey, int, asyncio.Future[Any]]] = []
        self._key_partitions: dict[int, dict[bytes, int]] = {}
        self._sticky: dict[str, int] = {}

    def use_producer(self, producer: AIOKafkaProducer) -> None:
        """Send through ``producer`` from now on; call with nothing pending (between commits of a suspended task)."""
        assert not self._in_flight and not self._full, "output pending on the old producer"
        self.producer = producer
        self._gates = _SEND_GATES.setdefault(producer, {})

    def partition_count(self, topic: str) -> int:
        try:
            return self.partition_counts[topic]
        except KeyError:
            raise MissingTopicError(f"topic {topic!r} is not known to this worker; create it first") from None

    def send(
        self,
        topic: str,
        keys: list[bytes | None],
        values: list[bytes | None],
        timestamps: list[int],
        headers: list[Any],
        partitions: list[int] | None = None,
    ) -> None:
        """Append serialized records (as parallel lists) to per-partition batches.

        ``partitions`` None means Kafka's default placement: murmur2 of the key bytes,
        a sticky partition per drain for null keys. Topics without metadata wait for ``drain``.
        """
        count = self.partition_counts.get(topic)
        if count is None:
            self._unplaced.append((topic, (keys, values, timestamps, headers, partitions)))
            return
        if partitions is None:
            partitions = self._default_partitions(topic, keys, count)
        builders = self._builders.get(topic)
        if builders is None:
            builders = self._builders[topic] = [None] * count
        production = self.production
        limit = sys.maxsize if production is None else production.limit(topic)
        #: batches of the producer's size would be too large for the topic: cut them smaller
        capped = production is not None and limit < production.batch_bytes
        size_of = DefaultRecordBatchBuilder.size_of
        create = self.producer.create_batch
        for key, value, timestamp, header, partition in zip(keys, values, timestamps, headers, partitions):
            header = list(header) if header else _NO_HEADERS
            builder = builders[partition]
            if builder is not None:
                if capped and builder.size() + size_of(key, value, header) + _RECORD_OVERHEAD > limit:
                    builder.close()
                elif builder.append(timestamp=timestamp, key=key, value=value, headers=header) is not None:
                    continue
                self._full.append(((topic, partition), builder))
            # a new batch, which takes any first record: it goes out only if the topic takes it
            builder = create()
            builder.append(timestamp=timestamp, key=key, value=value, headers=header)
            if builder.size() > limit:
                assert production is not None
                builders[partition] = None
                letter = production.too_large(topic, partition, (key, value, timestamp, header), builder.size())
                if letter is not None:
                    self._dead_letter(letter)
                continue
            builders[partition] = builder

    def _default_partitions(self, topic: str, keys: list[bytes | None], count: int) -> list[int]:
        cache = self._key_partitions.get(count)
        if cache is None or len(cache) > _KEY_CACHE_LIMIT:
            cache = self._key_partitions[count] = {}
        out = []
        for key in keys:
            partition = cache.get(key)  # type: ignore[arg-type]
            if partition is None:
                if key is None:
                    partition = self._sticky_partition(topic, count)
                else:
                    partition = cache[key] = default_partition(key, count)
            out.append(partition)
        return out

    def _sticky_partition(self, topic: str, count: int) -> int:
        partition = self._sticky.get(topic)
        if partition is None:
            partition = self._sticky[topic] = random.randrange(count)
        return partition

    async def drain(self, final: bool = False) -> None:
        """Send every non-empty batch; results are checked in ``flush``.

        ``final`` closes the batches, which makes the producer send them at once instead of
        after its linger time: a commit waiting for them gains nothing from lingering.
        """
        while self._unplaced:  # again for the dead letters of a refused topic, should theirs be unknown too
            await self._place_unknown_topics()
        batches = self._full + [
            ((topic, partition), builder)
            for topic, builders in self._builders.items()
            for partition, builder in enumerate(builders)
            if builder is not None
        ]
        self._full = []
        self._builders = {}
        self._sticky.clear()
        dead_lettered = False
        for (topic, partition), builder in batches:
            count = builder.record_count()
            if count:
                if final:
                    builder.close()
                gate = self._gates.get((topic, partition))
                if gate is None:
                    gate = self._gates[(topic, partition)] = asyncio.Lock()
                try:
                    async with gate:
                        future = await self.producer.send_batch(builder, topic, partition=partition)
                except REFUSED_BEFORE_SEND as error:
                    dead_lettered |= self._refused_before_send(topic, partition, builder, error)
                    continue
                self._in_flight.append(((topic, partition), count, future))
                if self.metrics is not None:
                    self.metrics.produced(topic, count)
        if dead_lettered:  # the dead letters of refused batches go out with this drain too
            await self.drain(final)

    def _refused_before_send(self, topic: str, partition: int, builder: BatchBuilder, error: BaseException) -> bool:
        """``send_batch`` refused a batch before queueing it: the policy decides for each of its records.

        Returns whether dead letters were added. Nothing of the batch reached the producer's
        sequence numbers, so the partition's later batches are unharmed.
        """
        if self.production is None:
            raise ProduceError(f"producing to {topic}[{partition}] failed: {error!r}") from error
        added = False
        for record in _records_of(builder):
            letter = self.production.refused(topic, partition, record, error)
            if letter is not None:
                self._dead_letter(letter)
                added = True
        return added

    def _dead_letter(self, letter: Produced) -> None:
        """Queue a refused record's dead letter; one too large for the dead-letter topic too goes without value."""
        assert self.production is not None
        topic = self.production.dead_letter_topic
        if _alone(self.producer, letter).size() > self.production.limit(topic):
            letter = self.production.without_value(letter)
        key, value, timestamp, headers = letter
        self.send(topic, [key], [value], [timestamp], [headers])

    async def flush(self) -> dict[TopicPartitionKey, int]:
        """Send everything and wait for the broker; returns the last offset written per partition."""
        await self.drain(final=True)
        in_flight, self._in_flight = self._in_flight, []
        if not in_flight:
            return {}
        results = await asyncio.gather(*(f for _, _, f in in_flight), return_exceptions=True)
        last: dict[TopicPartitionKey, int] = {}
        for (slot, count, _), result in zip(in_flight, results):
            if isinstance(result, BaseException):
                raise ProduceError(f"producing to {slot[0]}[{slot[1]}] failed: {result!r}{refusal_hint(result)}; "
                                   "a batch the broker refused after it was sent stops the task under every "
                                   "production_error_handler") from result
            if result is not None:
                last[slot] = max(last.get(slot, -1), result.offset + count - 1)
        return last

    def discard(self) -> None:
        """Forget unsent batches (the transaction they belong to is being aborted)."""
        self._builders = {}
        self._full = []
        self._unplaced = []
        self._in_flight = []

    async def _place_unknown_topics(self) -> None:
        """Learn the partitions of topics named per record; the policy decides for a topic the producer refuses."""
        pending, self._unplaced = self._unplaced, []
        refused: dict[str, BaseException] = {}
        for topic in {t for t, _ in pending}:
            try:
                partitions = await self.producer.partitions_for(topic)
            except REFUSED_BEFORE_SEND as error:  # not authorized (not even to describe it), or unknown
                refused[topic] = error
                continue
            if not partitions:
                raise MissingTopicError(f"topic {topic!r} does not exist; create it before writing to it")
            self.partition_counts[topic] = len(partitions)
        for topic, columns in pending:
            if topic in refused:
                self._refused_unplaced(topic, columns, refused[topic])
            else:
                self.send(topic, *columns)

    def _refused_unplaced(self, topic: str, columns: Columns, error: BaseException) -> None:
        """Records for a topic whose partitions the producer could not learn: none reached a batch."""
        if self.production is None:
            raise ProduceError(f"producing to {topic} failed: {error!r}{refusal_hint(error)}") from error
        keys, values, timestamps, headers, partitions = columns
        chosen = partitions if partitions is not None else [-1] * len(keys)  # -1: no partition chosen yet
        for key, value, timestamp, header, partition in zip(keys, values, timestamps, headers, chosen):
            letter = self.production.refused(topic, partition, (key, value, timestamp, list(header or ())), error)
            if letter is not None:
                self._dead_letter(letter)


def _alone(producer: AIOKafkaProducer, record: Produced) -> BatchBuilder:
    """A batch of just ``record``: its size is what the broker checks against max.message.bytes."""
    builder = producer.create_batch()
    key, value, timestamp, headers = record
    builder.append(timestamp=timestamp, key=key, value=value, headers=headers)
    return builder


def _records_of(builder: BatchBuilder) -> list[Produced]:
    """The records of a built batch, read back from its bytes (kept nowhere else, to keep sends cheap)."""
    batch = DefaultRecordBatch(bytes(builder._build()))  # aiokafka has no public reader of a builder
    return [(r.key, r.value, r.timestamp, list(r.headers)) for r in batch]
