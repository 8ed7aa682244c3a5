"""Start-up checks of topics against the real broker: each mistake stops the worker with the fix."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.errors import TopicMismatchError
from streamer.runtime.worker import Worker

pytestmark = pytest.mark.broker


async def _create(bootstrap: str, name: str, partitions: int, config: dict[str, str] | None = None) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
    finally:
        await admin.close()


def _counting(source: str) -> StreamsBuilder:
    builder = StreamsBuilder()
    builder.stream(source, key_serde="str").group_by_key().count("counts")
    return builder


async def _start(builder: StreamsBuilder, bootstrap: str, app_id: str, tmp_path) -> None:
    config = StreamerConfig(application_id=app_id, bootstrap_servers=bootstrap, state_dir=str(tmp_path))
    await asyncio.wait_for(Worker(builder.build(), config).run(), 60)


async def test_changelog_with_the_wrong_partition_count(kafka_bootstrap, new_topic, tmp_path) -> None:
    source = await new_topic("checks-in", partitions=3)
    app_id = f"checks-{uuid.uuid4().hex[:8]}"
    await _create(kafka_bootstrap, f"{app_id}-counts-changelog", 2, {"cleanup.policy": "compact"})
    with pytest.raises(TopicMismatchError,
                       match=f"{app_id}-counts-changelog has 2 partitions but the topology needs 3"):
        await _start(_counting(source), kafka_bootstrap, app_id, tmp_path)


async def test_changelog_that_is_not_compacted(kafka_bootstrap, new_topic, tmp_path) -> None:
    source = await new_topic("checks-in", partitions=2)
    app_id = f"checks-{uuid.uuid4().hex[:8]}"
    await _create(kafka_bootstrap, f"{app_id}-counts-changelog", 2, {"cleanup.policy": "delete"})
    expected = "cleanup.policy='delete'; it must be compacted.*--add-config cleanup.policy=compact"
    with pytest.raises(TopicMismatchError, match=expected):
        await _start(_counting(source), kafka_bootstrap, app_id, tmp_path)


async def test_inputs_of_one_task_must_be_co_partitioned(kafka_bootstrap, new_topic, tmp_path) -> None:
    left, right = await new_topic("checks-left", partitions=2), await new_topic("checks-right", partitions=3)
    builder = StreamsBuilder()
    builder.stream(left, key_serde="str").merge(builder.stream(right, key_serde="str")).group_by_key().count("c")
    with pytest.raises(TopicMismatchError, match="different partition counts.*co-partitioned"):
        await _start(builder, kafka_bootstrap, f"checks-{uuid.uuid4().hex[:8]}", tmp_path)


async def test_internal_topics_are_created_as_the_topology_needs(kafka_bootstrap, new_topic, tmp_path) -> None:
    source = await new_topic("checks-in", partitions=3)
    app_id = f"checks-{uuid.uuid4().hex[:8]}"
    builder = StreamsBuilder()
    builder.stream(source, key_serde="str", value_serde="str").group_by(lambda _k, v: v, key_serde="str").count("c")
    worker = Worker(builder.build(), StreamerConfig(application_id=app_id, bootstrap_servers=kafka_bootstrap,
                                                    state_dir=str(tmp_path)))
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.started.wait(), 60)
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            described = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(
                [f"{app_id}-c-repartition", f"{app_id}-c-changelog"])}
        finally:
            await admin.close()
        assert described == {f"{app_id}-c-repartition": 3, f"{app_id}-c-changelog": 3}
    finally:
        worker.stop()
        await running
