"""The Restorer on a real changelog: stores restored from empty are bulk loaded and equal the write-batch path.

Changelog partitions with puts, overwrites and tombstones are restored into empty stores
(bulk loaded: no offset) and into stores that have an offset (write batches); both must
end with the same contents and offsets, and the restore hooks (contract C2) must count
every record. A restore stopped after part of the changelog and resumed later (the
store then has an offset: write batches) ends where one restore of everything does.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamer.runtime import changelog_fetch
from streamer.runtime import restorer as restorer_module
from streamer.runtime.restorer import Restorer
from streamer.state import KeyValueStore, WriteCache, open_layout
from streamer.state.rocksdb_store import RocksDBStore
from streamer.state.segmented import SegmentedStore, time_bytes
from tests.kafka_helpers import produce

PARTITIONS = 2
RETENTION = 120_000


def rows(layout: str, records: int, seed: int) -> list[tuple[bytes, bytes | None, int]]:
    rng = random.Random(seed)
    out: list[tuple[bytes, bytes | None, int]] = []
    for number in range(records):
        user = b"key-%03d" % rng.randrange(150)
        key = user if layout == "key_value" else user + time_bytes(number * 400 - number * 400 % 10_000)
        value = None if rng.random() < 0.15 else b"value-%d" % number
        out.append((key, value, number % PARTITIONS))
    return out


def physical(store: KeyValueStore) -> list[tuple[bytes, bytes]]:
    inner = store.inner if isinstance(store, SegmentedStore) else store
    return list(inner.range(None, None))


class Stores:
    """One store per changelog partition in a directory, opened and closed together."""

    def __init__(self, directory: Path, layout: str, topic: str) -> None:
        retention = RETENTION if layout == "window" else None
        self.targets = {TopicPartition(topic, p): WriteCache(open_layout("rocksdb", directory / str(p), "s", layout,
                                                                          retention))
                        for p in range(PARTITIONS)}

    def contents(self) -> list[list[tuple[bytes, bytes]]]:
        return [physical(cache.store) for cache in self.targets.values()]

    def offsets(self) -> list[int | None]:
        return [cache.store.changelog_offset() for cache in self.targets.values()]

    def close(self) -> None:
        for cache in self.targets.values():
            cache.store.close()


async def restore(bootstrap: str, stores: Stores) -> tuple[dict[int, int], int]:
    """Restore; returns the records to restore per partition (on_restore_begin) and the records restored."""
    begun: dict[int, int] = {}
    restored: list[int] = []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    restorer = Restorer(consumer, on_restored=lambda _topic, count: restored.append(count),
                        on_restore_begin=lambda _topic, partition, count: begun.__setitem__(partition, count))
    try:
        await restorer.restore(stores.targets)
    finally:
        await restorer.close()
        await consumer.stop()
    return begun, sum(restored)


@pytest.fixture
def small_buffers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Fetches of about one 1 KB batch, bulk loads every ~4 KB: many SST files per restore; yields each one's size."""
    loads: list[int] = []
    original = RocksDBStore.bulk_load

    def counted(self: RocksDBStore, entries: object, next_offset: int, drop_ranges: object = ()) -> None:
        loads.append(len(entries))  # type: ignore[arg-type]
        original(self, entries, next_offset, drop_ranges)  # type: ignore[arg-type]

    monkeypatch.setattr(changelog_fetch, "PARTITION_FETCH_BYTES", 1024)
    monkeypatch.setattr(restorer_module, "SST_TARGET_BYTES", 4096)
    monkeypatch.setattr(restorer_module, "RESTORE_BUFFER_BYTES", 6000)
    monkeypatch.setattr(RocksDBStore, "bulk_load", counted)
    yield loads


@pytest.mark.parametrize("layout", ["key_value", "window"])
async def test_restore_from_empty_bulk_loads_what_write_batches_restore(
        kafka_bootstrap: str, new_topic, tmp_path: Path, small_buffers: list[int], layout: str) -> None:
    topic = await new_topic("bulk-restore-changelog", partitions=PARTITIONS, config={"cleanup.policy": "compact"})
    records = rows(layout, 2000, seed=3)
    await produce(kafka_bootstrap, topic, records, max_batch_size=1024)

    empty = Stores(tmp_path / "empty", layout, topic)
    existing = Stores(tmp_path / "existing", layout, topic)
    try:
        for cache in existing.targets.values():
            cache.store.write_batch((), 0)  # an offset of its own: restored with write batches
        begun, restored = await restore(kafka_bootstrap, empty)
        loads = len(small_buffers)
        assert loads > PARTITIONS * 2, "expected several SST files per partition"
        assert await restore(kafka_bootstrap, existing) == (begun, restored)
        assert len(small_buffers) == loads, "a store with an offset must not be bulk loaded"
        assert restored == len(records) == sum(begun.values())
        assert empty.contents() == existing.contents()
        assert all(empty.contents())
        assert empty.offsets() == existing.offsets() == [sum(1 for r in records if r[2] == p)
                                                         for p in range(PARTITIONS)]
    finally:
        empty.close()
        existing.close()


async def test_restore_stopped_midway_then_resumed_ends_as_one_restore(
        kafka_bootstrap: str, new_topic, tmp_path: Path, small_buffers: list[int]) -> None:
    topic = await new_topic("bulk-resume-changelog", partitions=PARTITIONS, config={"cleanup.policy": "compact"})
    records = rows("key_value", 1600, seed=5)
    await produce(kafka_bootstrap, topic, records[:900], max_batch_size=1024)
    part = Stores(tmp_path / "part", "key_value", topic)
    await restore(kafka_bootstrap, part)  # from empty: bulk loaded up to the first 900 records
    part.close()
    await produce(kafka_bootstrap, topic, records[900:], max_batch_size=1024)

    resumed = Stores(tmp_path / "part", "key_value", topic)
    whole = Stores(tmp_path / "whole", "key_value", topic)
    try:
        begun, restored = await restore(kafka_bootstrap, resumed)
        assert restored == 700 == sum(begun.values())  # only what came after the first restore
        await restore(kafka_bootstrap, whole)
        assert resumed.contents() == whole.contents()
        assert resumed.offsets() == whole.offsets()
    finally:
        resumed.close()
        whole.close()
