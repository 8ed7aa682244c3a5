"""The input data: generated deterministically, loaded into the input topic before any timing.

Records are ~100-byte JSON objects keyed by one of ``keys`` user ids, drawn from a seeded
generator so every run and every contender sees the same bytes. Record timestamps (also the
value's ``ts``) rise evenly from a fixed, window-aligned base so that the input spans
``SPAN_WINDOWS`` tumbling windows whatever its size; each partition's timestamps are in
order, so no record is late. What the workloads need to know about the data (how many pass
the filter, how often each key occurs, per window too) is tallied while producing, so
checking a contender's output needs no second pass over the input.

The enrich workload's table holds one JSON row per key (``table_row``), in a topic of its
own keyed and partitioned like the input, every row stamped before the first input record.
"""

from __future__ import annotations

import asyncio
import functools
import random
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer

from benchmarks.contenders.spec import TABLE_FIELD, WINDOW_MS, keep, windowed_key
from streamer.partitioner import default_partition

VALUE_BYTES = 100
SEED = 20240501
#: The first record's timestamp: a window boundary (in 2023, so the input and output topics
#: are created with time retention off, or the broker would delete them mid-run).
BASE_TIMESTAMP_MS = 1_700_000_000_000
#: How many windows of ``WINDOW_MS`` the input's timestamps cover (1M records: 1 ms apart).
SPAN_WINDOWS = 100
#: Settings of the topics the harness creates (input, outputs): the old timestamps stay readable.
TOPIC_CONFIGS = {"retention.ms": "-1"}
#: The enrich workload's table topic: compacted, as a table's topic is (and old timestamps kept).
TABLE_TOPIC_CONFIGS = {"cleanup.policy": "compact", "retention.ms": "-1"}
#: Every table row's timestamp: a minute before the first input record, so every contender
#: that reads its inputs in timestamp order (Kafka Streams, streamer, Quix) reads the table first.
TABLE_TIMESTAMP_MS = BASE_TIMESTAMP_MS - 60_000
TIERS = ("bronze", "silver", "gold", "platinum")
REGIONS = ("eu-west", "eu-north", "us-east", "us-west", "ap-south")


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
    value_bytes: int = 0
    #: The key index of every record in input order (its timestamp follows from its number).
    record_keys: array[int] = field(default_factory=lambda: array("I"))
    #: The highest timestamp of each partition: its stream time once the input is consumed.
    stream_time: dict[int, int] = field(default_factory=dict)
    #: The enrich workload's table topic, once loaded (``preload_table``).
    table_topic: str | None = None

    @functools.cached_property
    def last_ids(self) -> dict[bytes, int]:
        """The ``id`` of each key's last input record: its last enriched output's, as order per key holds."""
        last = {index: number for number, index in enumerate(self.record_keys)}
        return {key_name(index): number for index, number in last.items()}

    @functools.cached_property
    def window_counts(self) -> dict[bytes, int]:
        """Records per windowed output key (``key@start``), for the windowed workloads' checks."""
        counts: Counter[bytes] = Counter()
        for number, index in enumerate(self.record_keys):
            start = window_start(timestamp_ms(self.spec, number))
            counts[windowed_key(key_name(index).decode(), start).encode()] += 1
        return dict(counts)

    @functools.cached_property
    def closed_window_counts(self) -> dict[bytes, int]:
        """Those windows that end at or before their partition's final stream time: closed ones."""
        closed = {}
        for wkey, count in self.window_counts.items():
            key, _, start = wkey.rpartition(b"@")
            if int(start) + WINDOW_MS <= self.stream_time[default_partition(key, self.spec.partitions)]:
                closed[wkey] = count
        return closed


def key_name(index: int) -> bytes:
    return b"user-%05d" % index


def timestamp_ms(spec: DataSpec, number: int) -> int:
    """Record ``number``'s timestamp: evenly spread over ``SPAN_WINDOWS`` windows."""
    return BASE_TIMESTAMP_MS + number * SPAN_WINDOWS * WINDOW_MS // spec.records


def window_start(timestamp: int) -> int:
    return timestamp - timestamp % WINDOW_MS


def records(spec: DataSpec) -> Iterator[tuple[int, bytes, bytes, dict[str, object]]]:
    """(key index, key, value bytes, value) for every record, always the same for the same spec."""
    rng = random.Random(SEED)
    for number in range(spec.records):
        index = rng.randrange(spec.keys)
        key = key_name(index)
        value: dict[str, object] = {
            "id": number, "user": key.decode(), "amount": rng.randrange(100_000),
            "currency": "EUR", "ts": timestamp_ms(spec, number), "note": "",
        }
        encoded = orjson.dumps(value)
        value["note"] = "x" * max(0, VALUE_BYTES - len(encoded))  # pad to ~VALUE_BYTES
        yield index, key, orjson.dumps(value), value


def table_row(index: int) -> dict[str, object]:
    """Key ``index``'s row of the enrich workload's table, always the same."""
    return {"user": key_name(index).decode(), TABLE_FIELD: TIERS[index * 7919 % len(TIERS)],
            "region": REGIONS[index % len(REGIONS)], "since": 2000 + index % 25}


async def preload(bootstrap: str, topic: str, spec: DataSpec) -> Dataset:
    """Produce the whole data set into ``topic`` (which must exist) and wait for every ack."""
    data = Dataset(spec=spec, topic=topic)
    partition_of: dict[bytes, int] = {}

    def tallied() -> Iterator[tuple[int, bytes, bytes, int]]:
        for number, (index, key, encoded, value) in enumerate(records(spec)):
            partition = partition_of.get(key)
            if partition is None:
                partition = partition_of[key] = default_partition(key, spec.partitions)
            timestamp = timestamp_ms(spec, number)
            data.key_counts[key] += 1
            data.record_keys.append(index)
            data.stream_time[partition] = timestamp  # rising, so the last is the highest
            data.value_bytes += len(encoded)
            if keep(value):
                data.kept += 1
                data.kept_keys.add(key)
            yield partition, key, encoded, timestamp

    await _produce(bootstrap, topic, spec.partitions, tallied())
    return data


async def preload_table(bootstrap: str, data: Dataset, topic: str) -> None:
    """Produce one row per key into the table topic ``topic`` (which must exist), all older than the input.

    Keyed and partitioned like the input, so the table is co-partitioned with it.
    """
    spec = data.spec

    def rows() -> Iterator[tuple[int, bytes, bytes, int]]:
        for index in range(spec.keys):
            key = key_name(index)
            yield default_partition(key, spec.partitions), key, orjson.dumps(table_row(index)), TABLE_TIMESTAMP_MS

    await _produce(bootstrap, topic, spec.partitions, rows())
    data.table_topic = topic


async def _produce(bootstrap: str, topic: str, partitions: int,
                   rows: Iterator[tuple[int, bytes, bytes, int]]) -> None:
    """Send ``(partition, key, value, timestamp)`` rows in full per-partition batches; wait for every ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                                max_batch_size=512 * 1024, max_request_size=1_000_000)
    await producer.start()
    try:
        batches = [producer.create_batch() for _ in range(partitions)]
        acks: list[asyncio.Future[object]] = []
        for partition, key, encoded, timestamp in rows:
            if batches[partition].append(key=key, value=encoded, timestamp=timestamp) is None:
                acks.append(await producer.send_batch(batches[partition], topic, partition=partition))
                batches[partition] = producer.create_batch()
                batches[partition].append(key=key, value=encoded, timestamp=timestamp)
        for partition, batch in enumerate(batches):
            if batch.record_count():
                acks.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)
    finally:
        await producer.stop()
