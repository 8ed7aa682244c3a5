"""``streamer reset`` against the broker: a reset word count computes the same counts from scratch."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from apps.wordcount import build
from streamer.config import StreamerConfig
from streamer.errors import ResetError
from streamer.reset import ApplicationReset
from streamer.runtime.worker import Worker
from tests.kafka_helpers import consume_all, produce

pytestmark = pytest.mark.broker

INTERNAL = ("-words-by-word-repartition", "-word-counts-changelog")


async def _count_words(config: StreamerConfig, output: str, expected: int, during: object = None) -> dict[str, int]:
    """Run a worker until ``expected`` updates are in ``output``; the last count of each word."""
    worker = Worker(build().build(), config)
    running = asyncio.create_task(worker.run())
    try:
        records = await consume_all(config.bootstrap_servers, output, expected, timeout=90)
        if callable(during):
            await during()
    finally:
        worker.stop()
        await running
    return {r.key.decode(): json.loads(r.value) for r in records}


async def _state(admin: AIOKafkaAdminClient, config: StreamerConfig, source: str) -> tuple[object, ...]:
    """What a reset changes: committed input offsets, internal topics, the local state directory."""
    committed = await admin.list_consumer_group_offsets(config.application_id)
    offsets = {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == source}
    topics = sorted(t for t in await admin.list_topics() if t.startswith(config.application_id + "-"))
    return offsets, topics, (Path(config.state_dir) / config.application_id).exists()


async def test_a_reset_application_counts_the_same_from_scratch(
        kafka_bootstrap: str, new_topic, admin: AIOKafkaAdminClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    source = await new_topic("reset-lines", partitions=2)
    first_output = await new_topic("reset-counts", partitions=2)
    second_output = await new_topic("reset-counts-again", partitions=2)
    monkeypatch.setenv("STREAMER_APP_INPUT", source)
    monkeypatch.setenv("STREAMER_APP_OUTPUT", first_output)
    lines = [(None, f"apple banana apple {i % 5}".encode()) for i in range(300)]
    expected = Counter(word for _, line in lines for word in line.decode().split())
    await produce(kafka_bootstrap, source, lines)
    app = f"reset-{uuid.uuid4().hex[:8]}"
    config = StreamerConfig(application_id=app, bootstrap_servers=kafka_bootstrap, state_dir=str(tmp_path),
                            commit_interval_ms=200)

    async def refused() -> None:
        with pytest.raises(ResetError, match="active member.*stop every worker"):
            await ApplicationReset(config, out=lambda _: None).run()

    first = await _count_words(config, first_output, sum(expected.values()), during=refused)
    assert first == dict(expected)

    before = await _state(admin, config, source)
    offsets, topics, has_state = before
    assert set(offsets) == {0, 1} and sum(offsets.values()) == 300  # type: ignore[attr-defined]
    assert topics == sorted(app + suffix for suffix in INTERNAL) and has_state
    printed: list[str] = []
    plan = await ApplicationReset(config, build().build(), out=printed.append).run(dry_run=True)
    assert await _state(admin, config, source) == before
    assert printed == ["would " + line for line in plan.describe()]
    assert f"would reset offset of {source}-0 for group {app} to 0" in printed
    assert f"would delete internal topic {app}-word-counts-changelog" in printed
    assert f"would remove local state directory {tmp_path / app}" in printed

    await ApplicationReset(config, out=printed.append).run()
    assert await _state(admin, config, source) == ({0: 0, 1: 0}, [], False)

    monkeypatch.setenv("STREAMER_APP_OUTPUT", second_output)
    assert await _count_words(config, second_output, sum(expected.values())) == first


async def test_a_reset_to_a_time_starts_from_the_first_record_at_or_after_it(
        kafka_bootstrap: str, new_topic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = await new_topic("reset-times", partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for timestamp in (1_000, 2_000, 3_000):
            await producer.send_and_wait(source, b"x", partition=0, timestamp_ms=timestamp)
    finally:
        await producer.stop()
    monkeypatch.setenv("STREAMER_APP_INPUT", source)
    config = StreamerConfig(application_id=f"reset-time-{uuid.uuid4().hex[:8]}", bootstrap_servers=kafka_bootstrap,
                            state_dir=str(tmp_path))

    async def target(timestamp: int) -> int | None:
        plan = await ApplicationReset(config, build().build(), timestamp, out=lambda _: None).run(dry_run=True)
        return plan.offsets.get(TopicPartition(source, 0))

    assert [await target(t) for t in (0, 1_500, 2_000, 9_000)] == [0, 1, 1, 3]
