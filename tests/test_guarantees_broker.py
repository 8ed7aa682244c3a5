"""Commit paths against the real broker: under at-least-once, one task stuck in a slow async batch
holds up neither the fetching nor the output and commits of the worker's other tasks; under
exactly-once a task reopened after a failed first commit reads its partition from the beginning,
and under v1 a task given back to the worker that suspended it is not resumed with a producer
another worker fenced meanwhile.

The stuck task has processed a batch before (so every commit would want it): its first record
goes through, the second waits on an event the test sets. Commits come every 1.5 s, so the
first batch is almost never committed before the second starts; either way the test holds.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.runtime.transactions import transactional_id
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


async def test_exactly_once_reopens_a_suspended_task_whose_transactional_id_was_taken_meanwhile(
        kafka_bootstrap: str, new_topic: Any, admin: AIOKafkaAdminClient, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    # Under v1 another worker that opened the task while this one had it suspended (a group that
    # split during a broker failover and joined again) fenced its producer by InitProducerId,
    # without committing anything: the committed offsets still match. Resumed with that producer,
    # the task failed its first send as fenced, was closed, and its partition stalled.
    caplog.set_level(logging.INFO, logger="streamer.worker")
    source = await new_topic("reclaim-in", partitions=1)
    sink = await new_topic("reclaim-out", partitions=1)
    builder = StreamsBuilder()
    builder.stream(source, key_serde="str", value_serde="str").group_by_key().count("reclaim-count") \
        .to_stream().to(sink, value_serde="json")
    app_id = f"reclaim-{uuid.uuid4().hex[:8]}"
    config = StreamerConfig(application_id=app_id, bootstrap_servers=kafka_bootstrap, state_dir=str(tmp_path),
                            commit_interval_ms=200, session_timeout_ms=6000, heartbeat_interval_ms=1000,
                            processing_guarantee="exactly_once")
    worker = Worker(builder.build(), config)
    running = asyncio.create_task(worker.run())
    try:
        await produce(kafka_bootstrap, source, [(b"k", b"a", 0), (b"k", b"b", 0)])
        assert [r.value for r in await consume_all(kafka_bootstrap, sink, 2, timeout=60)] == [b"1", b"2"]
        await wait_for(lambda: _committed_is(admin, app_id, TopicPartition(source, 0), 2), timeout=30,
                       message="the input offsets to be committed")
        assert worker.consumer is not None
        worker.consumer._coordinator.request_rejoin()  # nobody else had it: resumed, with a new producer
        await wait_for(lambda: "resumed tasks 0_0 without restoring" in caplog.text or running.done(), timeout=60,
                       message="the task to be resumed")
        # Another worker's open of task 0_0: a producer of its transactional id, initialized and gone.
        other = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap,
                                 transactional_id=transactional_id(app_id, "0_0"))
        await other.start()
        await other.begin_transaction()
        await other.abort_transaction()
        await other.stop()
        worker.consumer._coordinator.request_rejoin()  # the same worker gets its suspended task back
        await wait_for(lambda: caplog.text.count("assigned tasks 0_0") == 3 and worker.ready() or running.done(),
                       timeout=60, message="the task to be given back and running")
        await produce(kafka_bootstrap, source, [(b"k", b"c", 0)])
        out = await consume_all(kafka_bootstrap, sink, 3, timeout=60)
        assert [r.value for r in out] == [b"1", b"2", b"3"]  # it runs, restored, exactly once
        assert "taken over elsewhere" in caplog.text and not running.done()
    finally:
        worker.stop()
        await running


@pytest.mark.parametrize("guarantee", ["exactly_once", "exactly_once_v2"])
async def test_a_task_reopened_before_its_first_commit_reads_its_partition_from_the_beginning(
        kafka_bootstrap: str, new_topic: Any, admin: AIOKafkaAdminClient, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, guarantee: str) -> None:
    # The first commit fails (the broker refuses a batch: the output, named per record, takes less
    # than it holds) and the task reopens with nothing committed for its partition. Its fetches
    # had moved the consumer past the records whose outputs the aborted transaction took with it:
    # the reopened task must read them again, not carry on from there (a broker failover can fail
    # a first commit just as well, and those records were lost).
    caplog.set_level(logging.INFO, logger="streamer.worker")
    source = await new_topic("first-in", partitions=1)
    output = await new_topic("first-out", partitions=1, config={"max.message.bytes": "2000"})
    await produce(kafka_bootstrap, source, [(b"k", b"a", 0), (b"k", b"b" * 5000, 0), (b"k", b"c", 0)])
    builder = StreamsBuilder()
    builder.stream(source, key_serde="str", value_serde="str").to(lambda _key, _value: output)
    config = StreamerConfig(application_id=f"first-{uuid.uuid4().hex[:8]}", bootstrap_servers=kafka_bootstrap,
                            state_dir=str(tmp_path), commit_interval_ms=200, processing_guarantee=guarantee)
    worker = Worker(builder.build(), config)
    running = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: "aborted, reopening it" in caplog.text or running.done(), timeout=60,
                       message="the first commit to fail")
        limit = ConfigResource(ConfigResourceType.TOPIC, output, {"max.message.bytes": "1048576"})
        await admin.alter_configs([limit])
        out = await consume_all(kafka_bootstrap, output, 3, timeout=60)
        assert [r.value for r in out] == [b"a", b"b" * 5000, b"c"]
        assert not running.done(), "the worker stopped"
    finally:
        worker.stop()
        await running
