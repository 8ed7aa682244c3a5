"""A task that moves while the last owner's transaction is still being decided restores all of it.

Under exactly-once the previous owner's last transaction holds changelog records and the
input offsets they belong to. A new owner that took the changelog's end before that
transaction was decided (the last stable offset, under read_committed) restored the state
without its records, then read the offsets that include them (OffsetFetch waits for stable
offsets): those records' state was lost. The previous owner here is a transactional
producer of the test's own, so the transaction stays open exactly as long as the test wants.
"""

from __future__ import annotations

import urllib.request
import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from streamer.devbroker.config import free_port
from streamer.state import timestamped
from tests.kafka_helpers import produce, wait_for
from tests.scale_app import STORE
from tests.test_scale_broker import APP, wait_for_counts
from tests.workers import WorkerProcess, while_running

pytestmark = pytest.mark.broker


def records_to_restore(port: int) -> float:
    """What the worker's restore metric says it found to restore (0 before a restore took its ends)."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("streamer_restore_records_to_restore_total{"))


@pytest.mark.parametrize("guarantee", ["exactly_once_v2", "exactly_once"])
async def test_a_restore_waits_for_the_last_owners_open_transaction(kafka_bootstrap, new_topic, guarantee) -> None:
    source, sink = await new_topic("pend-in", partitions=1), await new_topic("pend-out", partitions=1)
    app_id = f"pend-{uuid.uuid4().hex[:8]}"
    settings = {"input": source, "output": sink}
    await produce(kafka_bootstrap, source, [(b"k", b"x")] * 3)
    first = WorkerProcess(APP, kafka_bootstrap, app_id, guarantee=guarantee, app_settings=settings, name="first")
    first.start()
    try:
        await while_running([first], wait_for_counts(kafka_bootstrap, sink, {"k": 3}))
    finally:
        assert await first.stop() == 0, first.log()[-3000:]

    # The "previous owner" processes two more records: their count, output and offsets in one open transaction.
    await produce(kafka_bootstrap, source, [(b"k", b"x")] * 2)
    owner = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{app_id}-previous-owner")
    await owner.start()
    port = free_port()
    second = WorkerProcess(APP, kafka_bootstrap, app_id, guarantee=guarantee, app_settings=settings, name="second",
                           extra_args=["--metrics-port", str(port)])
    try:
        await owner.begin_transaction()
        changelog = f"{app_id}-{STORE}-changelog"
        for count in (4, 5):
            await owner.send_and_wait(changelog, timestamped.encode(0, str(count).encode()), key=b"k", partition=0)
            await owner.send_and_wait(sink, str(count).encode(), key=b"k", partition=0)
        await owner.send_offsets_to_transaction({TopicPartition(source, 0): 5}, app_id)

        second.start()  # empty state dir: its restore takes the changelog's end while the transaction is open
        await while_running([second], wait_for(lambda: records_to_restore(port), timeout=60,
                                               message="the second worker's restore began"))
        await owner.commit_transaction()

        await produce(kafka_bootstrap, source, [(b"k", b"x")])
        await while_running([second], wait_for_counts(kafka_bootstrap, sink, {"k": 6}))
    finally:
        await owner.stop()
        if second.process is not None:
            assert await second.stop() == 0, second.log()[-3000:]
