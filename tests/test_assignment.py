"""Partition assignment keeps the inputs of a task together on one worker."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.runtime.worker import Worker
from tests.kafka_helpers import wait_for

pytestmark = pytest.mark.broker


async def test_two_workers_never_share_a_task_with_two_input_topics(kafka_bootstrap, new_topic, tmp_path) -> None:
    left, right = await new_topic("assign-left", partitions=3), await new_topic("assign-right", partitions=3)
    output = await new_topic("assign-out", partitions=4)
    builder = StreamsBuilder()
    builder.stream(left).merge(builder.stream(right)).to(output)
    app_id = f"assign-{uuid.uuid4().hex[:8]}"
    workers = [
        Worker(builder.build(), StreamerConfig(application_id=app_id, bootstrap_servers=kafka_bootstrap,
                                               state_dir=str(tmp_path / str(i)), session_timeout_ms=6000,
                                               heartbeat_interval_ms=1000))
        for i in range(2)
    ]
    running = [asyncio.create_task(w.run()) for w in workers]
    try:
        def split() -> bool:
            owned = [set(w.tasks) for w in workers]
            return all(owned) and not owned[0] & owned[1] and owned[0] | owned[1] == {"0_0", "0_1", "0_2"}

        # With three partitions per topic, round robin would hand partition 1 of one topic
        # and partition 1 of the other to different workers.
        await wait_for(split, timeout=60, message="the three tasks were never split between the workers")
        for worker in workers:
            for task in worker.tasks.values():
                assert {tp.topic for tp in task.partitions} == {left, right}
                assigned = worker.consumer.assignment()
                assert all(tp in assigned for tp in task.partitions), f"task {task.task_id} is split"
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.gather(*running)
