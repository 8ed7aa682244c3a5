"""A standby store whose changelog position was deleted (retention, DeleteRecords) is wiped, not read on.

Reading on from the log start would keep keys whose tombstones went with the deleted
records; an active task's restore wipes such a store too (tests/test_restore_fetch_broker.py).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.runtime.metrics import WorkerMetrics
from streamer.runtime.standby import StandbyTasks
from streamer.runtime.task_stores import open_task_stores

STORE = "standby-counts"


async def test_a_standby_behind_the_log_start_is_wiped_and_follows_from_it(
        kafka_bootstrap: str, admin: AIOKafkaAdminClient, tmp_path: Path) -> None:
    app = f"standby-start-{uuid.uuid4().hex[:8]}"
    builder = StreamsBuilder()
    builder.stream("standby-input", key_serde="str", value_serde="str").group_by_key().count(STORE)
    subtopology = builder.build().subtopologies[0]
    changelog = next(spec for spec in subtopology.stores if spec.name == STORE).changelog_topic(app)
    await admin.create_topics([NewTopic(changelog, 1, 1, topic_configs={"cleanup.policy": "delete"})])
    tp = TopicPartition(changelog, 0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for number in range(30):  # offsets 0-29
            await producer.send_and_wait(changelog, b"v%d" % number, key=b"k%d" % (number % 10), partition=0)
        await producer.send_and_wait(changelog, b"kept", key=b"gone", partition=0)  # 30
        await producer.send_and_wait(changelog, None, key=b"gone", partition=0)  # 31: what the standby misses
        for number in range(30, 40):  # 32-41
            await producer.send_and_wait(changelog, b"v%d" % number, key=b"k%d" % (number % 10), partition=0)
    finally:
        await producer.stop()
    await admin.delete_records({tp: RecordsToDelete(35)})

    config = StreamerConfig(application_id=app, bootstrap_servers=kafka_bootstrap)
    errors: list[BaseException] = []
    stores = open_task_stores(subtopology, 0, tmp_path / "0_0", "rocksdb", app)
    # the standby's copy as of offset 31: it holds "gone" and keys k0-k9 of the first rounds
    stores[STORE].store.write_batch([(b"gone", b"kept"), *((b"k%d" % n, b"old") for n in range(10))], 31)

    def open_stores(_sub: Any, _partition: int) -> Any:
        return stores

    standbys = StandbyTasks(config, {subtopology.id: subtopology}, open_stores, tmp_path, errors.append,
                            WorkerMetrics())
    try:
        standbys.update([(subtopology.id, 0)])
        deadline = asyncio.get_running_loop().time() + 30
        while stores[STORE].store.changelog_offset() != 42:
            assert not errors, errors
            assert asyncio.get_running_loop().time() < deadline, stores[STORE].store.changelog_offset()
            await asyncio.sleep(0.05)
        # offsets 35-41 hold k3-k9 (numbers 33-39): nothing else survives
        assert dict(stores[STORE].store.range(None, None)) == {b"k%d" % (n % 10): b"v%d" % n for n in range(33, 40)}
    finally:
        await standbys.close()
        await admin.delete_topics([changelog])
