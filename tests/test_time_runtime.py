"""Stream time against the real broker: committed in the offset metadata under both guarantees,
restored when a task opens (before ``init``), and timestamp-ordered input across partitions."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.processors.user import RecordProcessor
from streamer.record import Record
from streamer.runtime.worker import Worker
from streamer.time import metadata
from streamer.topology.topology import Topology
from tests.kafka_helpers import consume_all

pytestmark = pytest.mark.broker

#: What each opened task saw in init(): (stream time, processor metadata "count").
OPENED: list[tuple[int, int | None]] = []


class StreamTimes(RecordProcessor):
    """Forwards the stream time as of each record and counts records in processor metadata."""

    def init(self) -> None:
        OPENED.append((self.stream_time, self.context.processor_metadata("count")))

    def process(self, record: Record) -> None:
        count = self.context.processor_metadata("count") or 0
        self.context.set_processor_metadata("count", count + 1)
        self.forward(record.with_value([record.value, self.stream_time]))


def _topology(topics: list[str], output: str) -> Topology:
    builder = StreamsBuilder()
    (builder.stream(topics, key_serde="str", value_serde="json")
        .process(StreamTimes).to(output, key_serde="str", value_serde="json"))
    return builder.build()


async def _send(bootstrap: str, topic: str, rows: list[tuple[str, Any, int]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, timestamp in rows:
            await producer.send(topic, orjson.dumps(value), key=key.encode(), partition=0, timestamp_ms=timestamp)
        await producer.flush()
    finally:
        await producer.stop()


async def _run_until(config: StreamerConfig, topology: Topology, bootstrap: str, output: str, count: int) -> list[Any]:
    worker = Worker(topology, config)
    running = asyncio.create_task(worker.run())
    try:
        records = await consume_all(bootstrap, output, count, timeout=60)
    finally:
        worker.stop()
        await asyncio.wait_for(running, 60)
    return [orjson.loads(r.value) for r in records]


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_stream_time_and_processor_metadata_survive_a_restart(kafka_bootstrap, new_topic, admin, tmp_path,
                                                                     guarantee: str) -> None:
    source = await new_topic("time-in", partitions=1)
    output = await new_topic("time-out", partitions=1)
    config = StreamerConfig(application_id=f"time-{uuid.uuid4().hex[:8]}", bootstrap_servers=kafka_bootstrap,
                            state_dir=str(tmp_path), commit_interval_ms=100, processing_guarantee=guarantee)
    topology = _topology([source], output)
    OPENED.clear()
    await _send(kafka_bootstrap, source, [("a", 1, 1_000), ("b", 2, 5_000), ("c", 3, 3_000)])
    first = await _run_until(config, topology, kafka_bootstrap, output, 3)
    assert first == [[1, 1_000], [2, 5_000], [3, 5_000]]
    assert OPENED == [(-1, None)]

    committed = await admin.list_consumer_group_offsets(config.application_id)
    assert metadata.decode(committed[TopicPartition(source, 0)].metadata) == (5_000, {"count": 3})

    # A new worker resumes at the committed stream time: a record older than it stays behind it.
    await _send(kafka_bootstrap, source, [("d", 4, 2_000)])
    second = await _run_until(config, topology, kafka_bootstrap, output, 4)
    assert second[3] == [4, 5_000]
    assert OPENED[1] == (5_000, 3)


async def test_a_task_with_two_inputs_processes_them_in_timestamp_order(kafka_bootstrap, new_topic,
                                                                         tmp_path) -> None:
    left = await new_topic("order-left", partitions=1)
    right = await new_topic("order-right", partitions=1)
    empty = await new_topic("order-empty", partitions=1)
    output = await new_topic("order-out", partitions=1)
    await _send(kafka_bootstrap, left, [(f"l{t}", t, t) for t in (1, 3, 5, 7)])
    await _send(kafka_bootstrap, right, [(f"r{t}", t, t) for t in (2, 4, 6, 8)])
    config = StreamerConfig(application_id=f"order-{uuid.uuid4().hex[:8]}", bootstrap_servers=kafka_bootstrap,
                            state_dir=str(tmp_path), commit_interval_ms=100)
    values = await _run_until(config, _topology([left, right], output), kafka_bootstrap, output, 8)
    assert [v[0] for v in values] == [1, 2, 3, 4, 5, 6, 7, 8]

    # An input that never gets a record holds nothing back once its lag is known to be 0.
    config = StreamerConfig(application_id=f"order-{uuid.uuid4().hex[:8]}", bootstrap_servers=kafka_bootstrap,
                            state_dir=str(tmp_path / "2"), commit_interval_ms=100)
    out2 = await new_topic("order-out2", partitions=1)
    values = await _run_until(config, _topology([left, empty], out2), kafka_bootstrap, out2, 4)
    assert [v[0] for v in values] == [1, 3, 5, 7]
