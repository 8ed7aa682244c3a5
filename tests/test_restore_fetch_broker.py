"""The restore's own fetch path against what a Kafka consumer sees, on a changelog with transactions.

The changelog (compacted, and compacted for real before the restore: offsets with gaps)
holds plain and idempotent records, tombstones, committed transactions, aborted ones
interleaved with committed ones of another producer, and at the end a transaction that
is still open under read_uncommitted (its records are read) and aborted, after a record
of another producer, under read_committed (a restore waits for an undecided transaction,
which tests/test_restore_pending_transaction_broker.py shows). A store restored from
empty (bulk loaded) and one restored with write batches must hold exactly what an
aiokafka consumer of the same isolation level reads up to the end offset taken before
the restore, and record that offset; so must a store restored halfway before, whose
restore begins inside a record batch. A store whose position the log no longer holds
(deleted records) is wiped and restored from the log start.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamer.runtime import changelog_fetch
from streamer.runtime.restorer import Restorer
from streamer.state import WriteCache, open_store

PARTITIONS = 2
KEYS = 40
#: Segments roll after a second at first, so the cleaner compacts the first round's records.
COMPACTING = {"cleanup.policy": "compact", "segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01",
              "delete.retention.ms": "3600000"}


def key(number: int) -> bytes:
    return b"key-%03d" % (number % KEYS)


async def read_log(bootstrap: str, topic: str, isolation_level: str) -> dict[int, list[tuple[int, bytes, Any]]]:
    """Every record a consumer of ``isolation_level`` reads up to the end offsets of now: (offset, key, value)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                isolation_level=isolation_level)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        records: dict[int, list[tuple[int, bytes, Any]]] = {p: [] for p in range(PARTITIONS)}
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                records[tp.partition] += [(r.offset, r.key, r.value) for r in batch if r.offset < ends[tp]]
        return records
    finally:
        await consumer.stop()


def applied(records: list[tuple[int, bytes, Any]]) -> dict[bytes, bytes]:
    """The store a changelog's records make: last value per key, tombstones delete."""
    table: dict[bytes, bytes] = {}
    for _offset, k, value in records:
        if value is None:
            table.pop(k, None)
        else:
            table[k] = value
    return table


async def transactional(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"restore-{uuid.uuid4().hex[:8]}")
    await producer.start()
    return producer


async def write_changelog(bootstrap: str, topic: str, round_: int, plain: AIOKafkaProducer) -> None:
    """Plain writes and tombstones, an aborted transaction interleaved with a committed one, then a committed one
    of the aborted one's producer."""
    for number in range(60):
        value = None if number % 7 == 0 else b"plain-%d-%d" % (round_, number)
        await plain.send(topic, value, key=key(number), partition=number % PARTITIONS)
    await plain.flush()
    aborting, committing = await transactional(bootstrap), await transactional(bootstrap)
    try:
        await aborting.begin_transaction()
        await committing.begin_transaction()
        for number in range(30):  # one batch each, alternating: aborted and committed batches interleave
            await aborting.send_and_wait(topic, b"aborted-%d" % number, key=key(number), partition=number % PARTITIONS)
            value = None if number % 5 == 0 else b"committed-%d-%d" % (round_, number)
            await committing.send_and_wait(topic, value, key=key(number * 3), partition=number % PARTITIONS)
        await aborting.abort_transaction()
        await committing.commit_transaction()
        async with aborting.transaction():  # the producer of an aborted transaction commits the next one
            for number in range(10):
                await aborting.send_and_wait(topic, b"after-abort-%d-%d" % (round_, number), key=key(number + 5),
                                             partition=number % PARTITIONS)
    finally:
        await aborting.stop()
        await committing.stop()


async def wait_for_compaction(bootstrap: str, topic: str, plain: AIOKafkaProducer) -> None:
    """Until the cleaner has removed records: some offset below the end is missing from a plain read."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        await asyncio.sleep(1.2)  # past segment.ms: the next write rolls the segment, so the old one is cleanable
        for partition in range(PARTITIONS):
            await plain.send(topic, b"roll", key=b"roll", partition=partition)
        await plain.flush()
        offsets = [offset for partition_records in (await read_log(bootstrap, topic, "read_uncommitted")).values()
                   for offset, _k, _v in partition_records]
        if len(offsets) < 90:  # 120 records and the rolls before cleaning, a record per key (40) and roll after
            return
    pytest.fail("the log cleaner did not compact the changelog within 90 s")


async def restore(bootstrap: str, targets: dict[TopicPartition, WriteCache], isolation_level: str) -> int:
    """Restore ``targets``; the records the restorer says it wrote."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation_level)
    await consumer.start()
    restored: list[int] = []
    restorer = Restorer(consumer, on_restored=lambda _topic, count: restored.append(count), log_progress=False)
    try:
        await restorer.restore(targets)
    finally:
        await restorer.close()
        await consumer.stop()
    return sum(restored)


@pytest.mark.parametrize("isolation_level", ["read_committed", "read_uncommitted"])
@pytest.mark.parametrize("fetch_bytes", [changelog_fetch.PARTITION_FETCH_BYTES, 200])
async def test_restore_holds_what_a_consumer_of_its_isolation_level_reads(
        kafka_bootstrap: str, new_topic: Any, admin: AIOKafkaAdminClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, isolation_level: str, fetch_bytes: int) -> None:
    # 200 bytes: most fetches hold one batch
    monkeypatch.setattr(changelog_fetch, "PARTITION_FETCH_BYTES", fetch_bytes)
    topic = await new_topic("restore-fetch-changelog", partitions=PARTITIONS, config=COMPACTING)
    plain = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True, linger_ms=5)
    await plain.start()
    open_transaction = await transactional(kafka_bootstrap)
    began = False
    try:
        await write_changelog(kafka_bootstrap, topic, 1, plain)
        await wait_for_compaction(kafka_bootstrap, topic, plain)
        # no more rolls: the second round stays in the active segment, which the cleaner leaves alone
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                  configs={**COMPACTING, "segment.ms": "3600000"})])
        await asyncio.sleep(1)
        await write_changelog(kafka_bootstrap, topic, 2, plain)
        await open_transaction.begin_transaction()  # still open during the restore: LSO < high watermark
        began = True
        for number in range(10):
            await open_transaction.send_and_wait(topic, b"open-%d" % number, key=key(number),
                                                 partition=number % PARTITIONS)
        await plain.send_and_wait(topic, b"after-open", key=key(1), partition=1)
        if isolation_level == "read_committed":
            # A read_committed restore waits for an undecided transaction (it reads to the high watermark,
            # see streamer.runtime.log_ends and tests/test_restore_pending_transaction_broker.py): decide it.
            await open_transaction.abort_transaction()
            began = False

        seen = await read_log(kafka_bootstrap, topic, isolation_level)
        expected = [applied(seen[p]) for p in range(PARTITIONS)]
        values = {value for records in seen.values() for _o, _k, value in records}
        has_aborted, has_open = any(v and v.startswith(b"aborted") for v in values), b"open-0" in values
        assert (has_aborted, has_open) == ((False, False) if isolation_level == "read_committed" else (True, True))
        assert any(value is None for records in seen.values() for _o, _k, value in records), "no tombstone left"
        probe = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level=isolation_level)
        await probe.start()
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await probe.end_offsets(partitions)
        await probe.stop()

        stores = {way: {tp: WriteCache(open_store("rocksdb", tmp_path / way / str(tp.partition), "s"))
                        for tp in partitions} for way in ("empty", "existing", "resumed")}
        try:
            for cache in stores["existing"].values():
                cache.store.write_batch((), 0)  # an offset of its own: write batches, not a bulk load
            for tp, cache in stores["resumed"].items():  # restored up to the middle, most likely inside a batch
                middle = ends[tp] // 2
                cache.store.write_batch(applied([r for r in seen[tp.partition] if r[0] < middle]).items(), middle)
            for way, targets in stores.items():
                starts = {tp: cache.store.changelog_offset() or 0 for tp, cache in targets.items()}
                restored = await restore(kafka_bootstrap, targets, isolation_level)
                assert restored == sum(1 for tp in partitions for r in seen[tp.partition] if r[0] >= starts[tp]), way
                for tp, cache in targets.items():
                    assert dict(cache.store.range(None, None)) == expected[tp.partition], (way, tp)
                    assert cache.store.changelog_offset() == ends[tp], (way, tp)
            assert await read_log(kafka_bootstrap, topic, isolation_level) == seen, "the log changed meanwhile"
        finally:
            for targets in stores.values():
                for cache in targets.values():
                    cache.store.close()
    finally:
        if began:
            await open_transaction.abort_transaction()
        await open_transaction.stop()
        await plain.stop()


async def test_a_store_behind_the_log_start_is_wiped_and_restored_from_it(
        kafka_bootstrap: str, new_topic: Any, admin: AIOKafkaAdminClient, tmp_path: Path) -> None:
    """Records the store has not seen were deleted (retention, as on a windowed changelog): continuing from the
    log start would keep a key whose tombstone went with them, so the store starts over."""
    topic = await new_topic("restore-log-start", partitions=PARTITIONS, config={"cleanup.policy": "delete"})
    tp = TopicPartition(topic, 0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for number in range(30):  # offsets 0-29
            await producer.send_and_wait(topic, b"v%d" % number, key=key(number), partition=0)
        await producer.send_and_wait(topic, b"kept", key=b"gone", partition=0)  # 30
        await producer.send_and_wait(topic, None, key=b"gone", partition=0)  # 31: the tombstone the store misses
        for number in range(30, 50):  # 32-51
            await producer.send_and_wait(topic, b"v%d" % number, key=key(number), partition=0)
    finally:
        await producer.stop()
    seen = (await read_log(kafka_bootstrap, topic, "read_uncommitted"))[0]
    behind = WriteCache(open_store("rocksdb", tmp_path / "behind", "s"))
    try:
        behind.store.write_batch(applied([r for r in seen if r[0] < 31]).items(), 31)  # holds "gone"
        await admin.delete_records({tp: RecordsToDelete(40)})
        restored = await restore(kafka_bootstrap, {tp: behind}, "read_uncommitted")
        expected = applied([r for r in seen if r[0] >= 40])
        assert dict(behind.store.range(None, None)) == expected and b"gone" not in expected
        assert behind.store.changelog_offset() == 52 and restored == 12
    finally:
        behind.store.close()
