"""The input data: generated deterministically, loaded into the input topic before any timing.

Records are ~100-byte JSON objects keyed by one of ``keys`` user ids, drawn from a seeded
generator so every run and every contender sees the same bytes. What the workloads need
to know about the data (how many pass the filter, how often each key occurs) is tallied
while producing, so checking a contender's output needs no second pass.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer

from benchmarks.contenders.spec import keep
from streamer.partitioner import default_partition

VALUE_BYTES = 100
SEED = 20240501


@dataclass(frozen=True)
class DataSpec:
    """How much data, spread how."""

    records: int = 1_000_000
    partitions: int = 8
    keys: int = 10_000


@dataclass
class Dataset:
    """What was loaded, and the facts the workloads check outputs against."""

    spec: DataSpec
    topic: str
    key_counts: Counter[bytes] = field(default_factory=Counter)
    kept: int = 0
    kept_keys: set[bytes] = field(default_factory=set)
    bytes: int = 0


def key_name(index: int) -> bytes:
    return b"user-%05d" % index


def records(spec: DataSpec) -> Iterator[tuple[bytes, bytes, dict[str, object]]]:
    """(key, value bytes, value) for every record, always the same for the same spec."""
    rng = random.Random(SEED)
    base = 1_700_000_000_000
    for number in range(spec.records):
        key = key_name(rng.randrange(spec.keys))
        value: dict[str, object] = {
            "id": number, "user": key.decode(), "amount": rng.randrange(100_000),
            "currency": "EUR", "ts": base + number, "note": "",
        }
        encoded = orjson.dumps(value)
        value["note"] = "x" * max(0, VALUE_BYTES - len(encoded))  # pad to ~VALUE_BYTES
        yield key, orjson.dumps(value), value


async def preload(bootstrap: str, topic: str, spec: DataSpec) -> Dataset:
    """Produce the whole data set into ``topic`` (which must exist) and wait for every ack."""
    data = Dataset(spec=spec, topic=topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                                max_batch_size=512 * 1024, max_request_size=1_000_000)
    await producer.start()
    try:
        partition_of: dict[bytes, int] = {}
        batches = [producer.create_batch() for _ in range(spec.partitions)]
        acks: list[asyncio.Future[object]] = []
        for key, encoded, value in records(spec):
            partition = partition_of.get(key)
            if partition is None:
                partition = partition_of[key] = default_partition(key, spec.partitions)
            if batches[partition].append(key=key, value=encoded, timestamp=None) is None:
                acks.append(await producer.send_batch(batches[partition], topic, partition=partition))
                batches[partition] = producer.create_batch()
                batches[partition].append(key=key, value=encoded, timestamp=None)
            data.key_counts[key] += 1
            data.bytes += len(encoded)
            if keep(value):
                data.kept += 1
                data.kept_keys.add(key)
        for partition, batch in enumerate(batches):
            if batch.record_count():
                acks.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)
    finally:
        await producer.stop()
    return data
