"""The local read API: a running worker answers store reads with the live aggregates."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest

from apps.wordcount import build
from streamer.config import StreamerConfig
from streamer.errors import TopologyError
from streamer.runtime.worker import Worker
from tests.kafka_helpers import consume_all, produce

pytestmark = pytest.mark.broker


async def test_a_running_worker_serves_its_store(kafka_bootstrap, new_topic, tmp_path, monkeypatch) -> None:
    source = await new_topic("query-lines", partitions=2)
    output = await new_topic("query-counts", partitions=2)
    monkeypatch.setenv("STREAMER_APP_INPUT", source)
    monkeypatch.setenv("STREAMER_APP_OUTPUT", output)
    lines = [(None, f"apple banana apple {i % 7}".encode()) for i in range(700)]
    expected = Counter(word for _, line in lines for word in line.decode().split())
    await produce(kafka_bootstrap, source, lines)
    config = StreamerConfig(application_id=f"query-{uuid.uuid4().hex[:8]}", bootstrap_servers=kafka_bootstrap,
                            state_dir=str(tmp_path), commit_interval_ms=200)
    worker = Worker(build().build(), config)
    running = asyncio.create_task(worker.run())
    try:
        await consume_all(kafka_bootstrap, output, sum(expected.values()), timeout=60)
        view = worker.store("word-counts")
        assert view.get("apple") == 1400 and view.get("banana") == 700
        assert view.get("cherry", 0) == 0 and "cherry" not in view
        assert view.all() == dict(expected)
        with pytest.raises(TopologyError, match="no store 'nope'"):
            worker.store("nope")
    finally:
        worker.stop()
        await running


async def test_memory_stores_give_the_same_counts(kafka_bootstrap, new_topic, tmp_path, monkeypatch) -> None:
    source = await new_topic("memory-lines", partitions=2)
    output = await new_topic("memory-counts", partitions=2)
    monkeypatch.setenv("STREAMER_APP_INPUT", source)
    monkeypatch.setenv("STREAMER_APP_OUTPUT", output)
    await produce(kafka_bootstrap, source, [(None, b"a b a")] * 50)
    config = StreamerConfig(application_id=f"memory-{uuid.uuid4().hex[:8]}", bootstrap_servers=kafka_bootstrap,
                            state_dir=str(tmp_path), state_store="memory", commit_interval_ms=200)
    worker = Worker(build().build(), config)
    running = asyncio.create_task(worker.run())
    try:
        await consume_all(kafka_bootstrap, output, 150, timeout=60)
        assert worker.store("word-counts").all() == {"a": 100, "b": 50}
    finally:
        worker.stop()
        await running
    assert not any(tmp_path.rglob("*.sst")) and not any(tmp_path.rglob("CURRENT"))
