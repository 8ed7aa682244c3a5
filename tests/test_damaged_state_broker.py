"""A worker killed with SIGKILL whose store files are then damaged restarts, rebuilds them and counts on exactly."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.kafka_helpers import consume_all, end_offsets, produce, wait_for
from tests.workers import WorkerProcess, while_running

pytestmark = pytest.mark.broker

APP = "apps.wordcount:topology"
WORDS = [f"word{i}" for i in range(300)]


def _lines(count: int, seed: int) -> list[tuple[None, bytes]]:
    rng = random.Random(seed)
    return [(None, " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))).encode()) for _ in range(count)]


def _counts(lines: list[tuple[None, bytes]]) -> Counter[str]:
    return Counter(word for _, line in lines for word in line.decode().split())


def _damage(store: Path, how: str) -> None:
    """What a kill -9 inside RocksDB's file-by-file delete left (no CURRENT), or a damaged MANIFEST."""
    if how == "no CURRENT":
        (store / "CURRENT").unlink()
    else:
        manifest = sorted(store.glob("MANIFEST-*"))[-1]
        manifest.write_bytes(manifest.read_bytes()[:20])


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
async def test_a_killed_worker_whose_stores_are_damaged_restores_them_and_counts_on(
        kafka_bootstrap: str, new_topic: Any, guarantee: str) -> None:
    source, output = await new_topic("dmg-lines", partitions=2), await new_topic("dmg-counts", partitions=2)
    app_id = f"dmg-{uuid.uuid4().hex[:8]}"
    settings = {"input": source, "output": output}
    first, second = _lines(3_000, seed=1), _lines(3_000, seed=2)
    before = sum(_counts(first).values())
    await produce(kafka_bootstrap, source, first)

    # A clean stop leaves SST files to damage; the second run is killed while it counts.
    worker = WorkerProcess(APP, kafka_bootstrap, app_id, guarantee=guarantee, app_settings=settings).start()
    try:
        await while_running([worker], consume_all(kafka_bootstrap, output, before, timeout=180))
    finally:
        assert await worker.stop() == 0, worker.log()[-3000:]
    killed = WorkerProcess(APP, kafka_bootstrap, app_id, guarantee=guarantee, app_settings=settings,
                           state_dir=worker.state_dir, name="killed").start()
    try:
        await killed.wait_for_log("assigned tasks", timeout=60)
        await produce(kafka_bootstrap, source, second)

        async def counting() -> bool:  # some of the second lines counted (committed or not): the kill lands mid-run
            return sum((await end_offsets(kafka_bootstrap, output)).values()) > before

        await while_running([killed], wait_for(counting, timeout=120, message="the second run to count"))
    finally:
        killed.kill()

    root = Path(worker.state_dir) / app_id
    stores = sorted(root.glob("1_*/word-counts"))
    assert len(stores) == 2, sorted(p.name for p in root.iterdir())
    for store, how in zip(stores, ("no CURRENT", "short MANIFEST")):
        _damage(store, how)

    expected = _counts(first + second)

    async def counted() -> list[Any] | None:
        """The output so far, once every word reached its count (under at-least-once some get there twice)."""
        records = await consume_all(kafka_bootstrap, output, 0)
        latest = {record.key.decode(): orjson.loads(record.value) for record in records}
        return records if all(latest.get(word, 0) >= count for word, count in expected.items()) else None

    restarted = WorkerProcess(APP, kafka_bootstrap, app_id, guarantee=guarantee, app_settings=settings,
                              state_dir=worker.state_dir, name="restarted").start()
    try:
        updates = await while_running([restarted], wait_for(counted, timeout=240, interval=1.0,
                                                            message="every word to reach its count"))
        await restarted.wait_for_log("restored", timeout=60)
    finally:
        assert await restarted.stop() == 0, restarted.log()[-3000:]
    log = restarted.log()
    for store in stores:
        assert f"RocksDB store word-counts at {store} is damaged" in log, log[-3000:]
    assert log.count("deleting it and opening it empty, to be restored from its changelog") == 2

    seen: dict[str, list[int]] = defaultdict(list)
    for record in updates:  # per partition in offset order; a word lives in one partition
        seen[record.key.decode()].append(orjson.loads(record.value))
    assert set(seen) == set(expected)
    if guarantee == "exactly_once":  # every word counted 1, 2, ..., n: nothing lost, nothing twice
        assert all(counts == list(range(1, expected[word] + 1)) for word, counts in seen.items())
        assert len(updates) == sum(expected.values())
    else:  # lines after the killed run's last commit may count again, but none goes missing
        assert all(counts[-1] >= expected[word] for word, counts in seen.items())
