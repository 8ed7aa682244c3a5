"""Commit paths against the real broker: under at-least-once, one task stuck in a slow async batch
holds up neither the fetching nor the output and commits of the worker's other tasks.

The stuck task has processed a batch before (so every commit would want it): its first record
goes through, the second waits on an event the test sets. Commits come every 1.5 s, so the
first batch is almost never committed before the second starts; either way the test holds.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.runtime.worker import Worker
from tests.kafka_helpers import consume_all, produce, wait_for

pytestmark = pytest.mark.broker


async def _committed(admin: AIOKafkaAdminClient, group: str, tp: TopicPartition) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return offsets[tp].offset if tp in offsets else -1


async def test_a_slow_async_batch_in_one_task_holds_up_no_other_task(kafka_bootstrap: str, new_topic: Any,
                                                                     admin: AIOKafkaAdminClient,
                                                                     tmp_path: Path) -> None:
    source = await new_topic("slow-in", partitions=2)
    sink = await new_topic("slow-out", partitions=1)
    release = asyncio.Event()
    entered = asyncio.Event()

    async def upper(value: str) -> str:
        if value == "block":  # the batch of partition 0 waits here until the test lets it go
            entered.set()
            await release.wait()
        return value.upper()

    builder = StreamsBuilder()
    builder.stream(source, key_serde="str", value_serde="str").map_values(upper).to(sink)
    app_id = f"slow-{uuid.uuid4().hex[:8]}"
    config = StreamerConfig(application_id=app_id, bootstrap_servers=kafka_bootstrap, state_dir=str(tmp_path),
                            commit_interval_ms=1500, session_timeout_ms=6000, heartbeat_interval_ms=1000)
    worker = Worker(builder.build(), config)
    running = asyncio.create_task(worker.run())
    try:
        await produce(kafka_bootstrap, source, [(b"k", b"a", 0)])
        await consume_all(kafka_bootstrap, sink, 1, timeout=30)
        await produce(kafka_bootstrap, source, [(b"k", b"block", 0)])
        await wait_for(lambda: entered.is_set() or running.done(), timeout=60, message="partition 0 to block")
        # Produced once partition 0 is stuck: only a poll loop that still fetches sees these.
        await produce(kafka_bootstrap, source, [(b"k", f"r{i}".encode(), 1) for i in range(5)])
        out = await consume_all(kafka_bootstrap, sink, 6, timeout=30)
        assert sorted(r.value for r in out) == [b"A"] + [f"R{i}".encode() for i in range(5)]
        await wait_for(lambda: _committed_is(admin, app_id, TopicPartition(source, 1), 5), timeout=30,
                       message="partition 1's offsets to be committed while partition 0 is blocked")
        assert await _committed(admin, app_id, TopicPartition(source, 0)) < 2
        release.set()
        await wait_for(lambda: _committed_is(admin, app_id, TopicPartition(source, 0), 2), timeout=30,
                       message="partition 0's offset to be committed once its batch ended")
        assert b"BLOCK" in {r.value for r in await consume_all(kafka_bootstrap, sink, 7, timeout=30)}
    finally:
        release.set()
        worker.stop()
        await running


async def _committed_is(admin: AIOKafkaAdminClient, group: str, tp: TopicPartition, offset: int) -> bool:
    return await _committed(admin, group, tp) == offset
