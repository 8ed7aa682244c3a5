"""Stateful apps against the real broker: exact counts, restore from changelogs, moving tasks."""

from __future__ import annotations

import random
import shutil
import uuid
from collections import Counter

import orjson
import pytest

from tests.kafka_helpers import consume_all, produce
from tests.workers import WorkerProcess, while_running

pytestmark = pytest.mark.broker

WORDS = [f"word{i}" for i in range(2_000)]


def _lines(count: int, seed: int) -> list[tuple[None, bytes]]:
    rng = random.Random(seed)
    return [(None, " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8))).encode()) for _ in range(count)]


def _counts(lines: list[tuple[None, bytes]]) -> Counter:
    return Counter(word for _, line in lines for word in line.decode().split())


def _latest(records) -> dict[str, int]:
    """The last update per word, read in offset order per partition (a word lives in one partition)."""
    latest: dict[str, int] = {}
    for record in records:
        latest[record.key.decode()] = orjson.loads(record.value)
    return latest


async def _wordcount_topics(new_topic) -> tuple[str, str, dict[str, str]]:
    source = await new_topic("lines", partitions=4)
    output = await new_topic("word-counts", partitions=4)
    return source, output, {"input": source, "output": output}


async def test_word_count_is_exact_and_survives_losing_the_state_directory(kafka_bootstrap, new_topic) -> None:
    source, output, settings = await _wordcount_topics(new_topic)
    app_id = f"wc-{uuid.uuid4().hex[:8]}"
    lines = _lines(200_000, seed=1)
    expected = _counts(lines)
    await produce(kafka_bootstrap, source, lines)

    worker = WorkerProcess("apps.wordcount:topology", kafka_bootstrap, app_id, app_settings=settings).start()
    try:
        updates = await while_running(
            [worker], consume_all(kafka_bootstrap, output, sum(expected.values()), timeout=240)
        )
    finally:
        assert await worker.stop() == 0, worker.log()[-3000:]
    assert _latest(updates) == dict(expected)

    # A worker that lost its disk rebuilds the counts from the changelog before counting on.
    shutil.rmtree(worker.state_dir)
    more = _lines(1_000, seed=2)
    await produce(kafka_bootstrap, source, more)
    restarted = WorkerProcess("apps.wordcount:topology", kafka_bootstrap, app_id, app_settings=settings,
                              state_dir=worker.state_dir, name="restarted").start()
    try:
        total = sum(expected.values()) + sum(_counts(more).values())
        updates = await while_running([restarted], consume_all(kafka_bootstrap, output, total, timeout=240))
        await restarted.wait_for_log("restored")
    finally:
        assert await restarted.stop() == 0, restarted.log()[-3000:]
    assert _latest(updates) == dict(expected + _counts(more))
    assert len(updates) == total, "a clean restart must not count anything twice"


async def test_counts_stay_exact_while_tasks_move_between_two_workers(kafka_bootstrap, new_topic) -> None:
    source, output, settings = await _wordcount_topics(new_topic)
    app_id = f"wc-{uuid.uuid4().hex[:8]}"
    batches = [_lines(30_000, seed=s) for s in (3, 4, 5)]
    first = WorkerProcess("apps.wordcount:topology", kafka_bootstrap, app_id, app_settings=settings, name="first")
    second = WorkerProcess("apps.wordcount:topology", kafka_bootstrap, app_id, app_settings=settings, name="second")
    try:
        first.start()
        await produce(kafka_bootstrap, source, batches[0])
        seen = sum(_counts(batches[0]).values())
        await while_running([first], consume_all(kafka_bootstrap, output, seen, timeout=120))

        second.start()  # tasks move: the second worker restores them from the changelogs
        await second.wait_for_log("assigned tasks", timeout=60)
        await produce(kafka_bootstrap, source, batches[1])
        assert await first.stop() == 0, first.log()[-3000:]  # and back again
        await produce(kafka_bootstrap, source, batches[2])

        expected = _counts(batches[0]) + _counts(batches[1]) + _counts(batches[2])
        updates = await while_running(
            [second], consume_all(kafka_bootstrap, output, sum(expected.values()), timeout=240)
        )
    finally:
        for worker in (first, second):
            if worker.running:
                assert await worker.stop() == 0, worker.log()[-3000:]
    # Hand-overs here are all clean (rebalance or SIGTERM commit first), so nothing is
    # counted twice. Only a crash (kill -9) lets at-least-once repeat the records
    # processed since the last commit; tests/test_chaos.py covers that case.
    assert _latest(updates) == dict(expected)
    assert len(updates) == sum(expected.values())


def _profiles(users: int, moves: int, seed: int) -> tuple[list[tuple[bytes, bytes | None]], dict[str, str], int]:
    """Profile updates where users join, move between regions and leave.

    Returns the updates, every user's final region, and how many count updates the app
    emits: one per join or leave, two per move (out of the old region, into the new one), one
    per update that stays in its region.
    """
    rng = random.Random(seed)
    regions = ["north", "south", "east", "west", "centre"]
    where: dict[str, str] = {}
    rows: list[tuple[bytes, bytes | None]] = []
    for index in range(users):
        user = f"user-{index}"
        where[user] = rng.choice(regions)
        rows.append((user.encode(), orjson.dumps({"name": user, "region": where[user]})))
    emitted = users
    for _ in range(moves):
        user = f"user-{rng.randrange(users)}"
        if user in where and rng.random() < 0.05:
            del where[user]
            rows.append((user.encode(), None))
            emitted += 1
        elif user in where or rng.random() < 0.5:
            region = rng.choice(regions)
            # A move out of one region into another updates both counts; an update within the
            # same region is one net change (as Kafka Streams since 3.5).
            emitted += (1 if where[user] == region else 2) if user in where else 1
            where[user] = region
            rows.append((user.encode(), orjson.dumps({"name": user, "region": where[user]})))
    return rows, where, emitted


async def test_users_per_region_subtracts_users_who_move(kafka_bootstrap, new_topic) -> None:
    profiles = await new_topic("profiles", partitions=4)
    output = await new_topic("per-region", partitions=4)
    rows, final, emitted = _profiles(users=2_000, moves=8_000, seed=6)
    await produce(kafka_bootstrap, profiles, rows)
    worker = WorkerProcess("apps.regions:topology", kafka_bootstrap, f"regions-{uuid.uuid4().hex[:8]}",
                           app_settings={"profiles": profiles, "output": output}).start()
    try:
        updates = await while_running([worker], consume_all(kafka_bootstrap, output, emitted, timeout=120))
    finally:
        assert await worker.stop() == 0, worker.log()[-3000:]
    assert len(updates) == emitted
    latest = _latest(updates)
    assert {region: count for region, count in latest.items() if count} == dict(Counter(final.values()))
