"""Async helpers for tests against a real broker: produce in batches, read everything back, poll."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from streamer.partitioner import default_partition

Row = tuple[bytes | None, bytes | None] | tuple[bytes | None, bytes | None, int]


async def produce(bootstrap: str, topic: str, records: Sequence[Row], *, acks: int | str = "all",
                  linger_ms: int = 0, max_batch_size: int = 16384) -> None:
    """Write ``records`` — ``(key, value)`` or ``(key, value, partition)`` — with create_batch/send_batch.

    Rows without a partition go where Kafka's default partitioner puts their key (murmur2);
    rows with a None key are spread round-robin. Order is kept within each partition.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=acks, linger_ms=linger_ms,
                                enable_idempotence=acks == "all", request_timeout_ms=30000,
                                max_batch_size=max_batch_size)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        spread = itertools.cycle(partitions)
        by_partition: dict[int, list[tuple[bytes | None, bytes | None]]] = {p: [] for p in partitions}
        for row in records:
            key, value = row[0], row[1]
            if len(row) > 2:
                partition = row[2]
            elif key is not None:
                partition = default_partition(key, len(partitions))
            else:
                partition = next(spread)
            by_partition[partition].append((key, value))
        await asyncio.gather(*(_send_partition(producer, topic, p, rows)
                               for p, rows in by_partition.items() if rows))
    finally:
        await producer.stop()


async def _send_partition(producer: AIOKafkaProducer, topic: str, partition: int,
                          rows: list[tuple[bytes | None, bytes | None]]) -> None:
    """Fill batches in order and send them one after another (aiokafka keeps one in flight per partition)."""
    deliveries = []
    batch = producer.create_batch()
    for key, value in rows:
        if batch.append(key=key, value=value, timestamp=None) is None:
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record of {len(value or b'')} bytes does not fit in an empty batch")
    if batch.record_count():
        deliveries.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*deliveries)


async def consume_all(bootstrap: str, topic: str, expected_count: int, timeout: float = 60.0,
                      isolation_level: str = "read_committed") -> list[ConsumerRecord]:
    """Read ``topic`` from the beginning of every partition until ``expected_count`` records arrived.

    Once that many have arrived it goes on to the end offsets of that moment (the last stable
    offset for read_committed), so extra records already there are returned too and a test
    can tell "exactly N" from "at least N". Fails with an assertion naming what was read.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level=isolation_level, auto_offset_reset="earliest",
                                group_id=None, client_id=f"consume-all-{uuid.uuid4().hex[:6]}")
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        got: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        ends: dict[TopicPartition, int] | None = None
        while True:
            if len(got) >= expected_count:
                if ends is None:
                    ends = await consumer.end_offsets(partitions)
                if await _reached(consumer, ends):
                    return got
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                per_partition = {tp.partition: n for tp, n in _count(got).items()}
                raise AssertionError(
                    f"read {len(got)} of {expected_count} expected records from {topic!r} in {timeout}s "
                    f"({isolation_level}); per partition: {per_partition}")
            batches = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for tp in sorted(batches, key=lambda t: t.partition):
                got.extend(batches[tp])
    finally:
        await consumer.stop()


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def _count(records: list[ConsumerRecord]) -> dict[TopicPartition, int]:
    counts: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        counts[tp] = counts.get(tp, 0) + 1
    return counts


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float = 10.0) -> list[TopicPartition]:
    """The topic's partitions from fresh metadata (the consumer's own cache only knows subscriptions)."""

    async def known() -> set[int] | None:
        cluster = await consumer._client.fetch_all_metadata()
        found: set[int] | None = cluster.partitions_for_topic(topic)
        return found

    ids = await wait_for(known, timeout=timeout, interval=0.1, message=f"topic {topic!r} in the metadata")
    return [TopicPartition(topic, p) for p in sorted(ids)]


async def end_offsets(bootstrap: str, topic: str, isolation_level: str = "read_uncommitted") -> dict[int, int]:
    """``{partition: end offset}`` of ``topic`` (the last stable offset under read_committed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level=isolation_level, group_id=None)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def wait_for(predicate: Callable[[], Any] | Callable[[], Awaitable[Any]], timeout: float = 30.0,
                   interval: float = 0.1, message: str = "") -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; return that value.

    Raises AssertionError after ``timeout`` seconds, with ``message`` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(f"condition not met within {timeout}s: {what} (last value: {value!r})")
        await asyncio.sleep(interval)
