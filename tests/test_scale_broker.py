"""Scaling against the real broker: sticky tasks that resume without restore, the start-up join wait,
static membership, standby failover and warm-ups, with several workers."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamer.config import StreamerConfig
from streamer.runtime.worker import Worker
from tests.kafka_helpers import end_offsets, produce, wait_for
from tests.scale_app import STORE, build
from tests.workers import WorkerProcess, assigned_tasks, while_running

pytestmark = pytest.mark.broker

APP = "tests.scale_app:build"


def records(start: int, stop: int, keys: int = 40) -> list[tuple[bytes, bytes]]:
    return [(f"k{n % keys}".encode(), b"x") for n in range(start, stop)]


def expected_counts(stop: int, keys: int = 40) -> dict[str, int]:
    return dict(Counter(f"k{n % keys}" for n in range(stop)))


async def read_counts(bootstrap: str, topic: str) -> dict[str, int]:
    """The highest count per key on the output topic so far (read_committed)."""
    ends = {TopicPartition(topic, p): offset
            for p, offset in (await end_offsets(bootstrap, topic, "read_committed")).items()}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        best: dict[str, int] = {}
        for _ in range(1000):
            if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                break
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for message in batch:
                    key = message.key.decode()
                    best[key] = max(best.get(key, 0), orjson.loads(message.value))
        return best
    finally:
        await consumer.stop()


async def wait_for_counts(bootstrap: str, topic: str, expected: dict[str, int], timeout: float = 60) -> dict[str, int]:
    async def reached() -> dict[str, int] | None:
        counts = await read_counts(bootstrap, topic)
        return counts if counts == expected or any(counts.get(k, 0) > v for k, v in expected.items()) else None

    counts = await wait_for(reached, timeout=timeout, interval=0.5, message="the output counts")
    assert counts == expected, f"counts differ: {sorted(set(counts.items()) ^ set(expected.items()))[:10]}"
    return counts


def in_process_worker(app_id: str, bootstrap: str, state_dir: Path, **settings: Any) -> Worker:
    config = StreamerConfig(application_id=app_id, bootstrap_servers=bootstrap, state_dir=str(state_dir),
                            commit_interval_ms=200, session_timeout_ms=6000, heartbeat_interval_ms=1000, **settings)
    return Worker(build(), config)


def restored(worker: Worker) -> float:
    return worker.metrics.registry.get_sample_value("streamer_restore_records_total", {"store": STORE}) or 0.0


async def test_a_task_given_back_resumes_without_restore(kafka_bootstrap, new_topic, tmp_path, monkeypatch) -> None:
    source, output = await new_topic("scale-in", partitions=4), await new_topic("scale-out", partitions=4)
    monkeypatch.setenv("STREAMER_APP_INPUT", source)
    monkeypatch.setenv("STREAMER_APP_OUTPUT", output)
    app_id = f"sticky-{uuid.uuid4().hex[:8]}"
    first = in_process_worker(app_id, kafka_bootstrap, tmp_path / "a")
    running = {"a": asyncio.create_task(first.run())}
    second: Worker | None = None
    try:
        await produce(kafka_bootstrap, source, records(0, 400))
        await wait_for_counts(kafka_bootstrap, output, expected_counts(400))
        before = dict(first.tasks)
        assert set(before) == {"0_0", "0_1", "0_2", "0_3"}

        second = in_process_worker(app_id, kafka_bootstrap, tmp_path / "b")
        running["b"] = asyncio.create_task(second.run())
        await wait_for(lambda: len(first.tasks) == 2 and len(second.tasks) == 2 and first.ready() and second.ready(),
                       timeout=60, message="the tasks to be shared by both workers")
        kept = set(first.tasks)
        assert all(first.tasks[t] is before[t] for t in kept), "the tasks the first worker kept were reopened"
        assert restored(first) == 0, "a resumed task restored its state"
        await produce(kafka_bootstrap, source, records(400, 800))
        await wait_for_counts(kafka_bootstrap, output, expected_counts(800))
        moved = restored(second)
        assert moved > 0, "the moved tasks had to be restored from their changelogs"

        second.stop()
        await running.pop("b")
        await wait_for(lambda: len(first.tasks) == 4 and first.ready(), timeout=60,
                       message="the first worker to take every task back")
        assert all(first.tasks[t] is before[t] for t in kept), "a task that stayed was reopened"
        # The tasks that come back restore only what the second worker added to their changelogs.
        changelog = await end_offsets(kafka_bootstrap, f"{app_id}-{STORE}-changelog")
        returned = sum(changelog[int(t.split("_")[1])] for t in set(before) - kept)
        assert 0 < restored(first) < returned
        await produce(kafka_bootstrap, source, records(800, 1000))
        await wait_for_counts(kafka_bootstrap, output, expected_counts(1000))
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        await asyncio.gather(*running.values())


async def test_a_worker_started_while_the_group_waits_out_a_dead_member_waits_and_takes_over(
        kafka_bootstrap, new_topic) -> None:
    source, output = await new_topic("join-in", partitions=2), await new_topic("join-out", partitions=2)
    app_id = f"join-wait-{uuid.uuid4().hex[:8]}"
    settings = {"input": source, "output": output}
    # The second worker gives the broker 3 s to answer: far less than the 10 s the join waits.
    slow = ["--set", "session_timeout_ms=10000", "--set", "broker_timeout_s=3"]
    first = WorkerProcess(APP, kafka_bootstrap, app_id, app_settings=settings, extra_args=slow, name="first").start()
    second = WorkerProcess(APP, kafka_bootstrap, app_id, app_settings=settings, extra_args=slow, name="second")
    try:
        await first.wait_for_log("assigned tasks 0_0, 0_1")
        await produce(kafka_bootstrap, source, records(0, 100))
        await wait_for_counts(kafka_bootstrap, output, expected_counts(100))
        first.kill()
        second.start()
        await second.wait_for_log("waiting for group", timeout=30)
        await second.wait_for_log("assigned tasks 0_0, 0_1", timeout=60)
        await produce(kafka_bootstrap, source, records(100, 200))
        await while_running([second], wait_for_counts(kafka_bootstrap, output, expected_counts(200)))
        assert "no Kafka broker answered" not in second.log()
    finally:
        first.kill()
        if second.process is not None:
            assert await second.stop() == 0, second.log()[-3000:]


async def test_a_static_member_restarting_within_its_session_causes_no_rebalance(kafka_bootstrap, new_topic) -> None:
    source, output = await new_topic("static-in", partitions=4), await new_topic("static-out", partitions=4)
    app_id = f"static-{uuid.uuid4().hex[:8]}"
    settings = {"input": source, "output": output}

    def worker(name: str) -> WorkerProcess:
        return WorkerProcess(APP, kafka_bootstrap, app_id, app_settings=settings, name=name,
                             extra_args=["--set", f"group_instance_id={app_id}-{name}",
                                         "--set", "session_timeout_ms=20000"])

    first, second = worker("first").start(), worker("second").start()
    restarted: WorkerProcess | None = None
    try:
        async def shared() -> bool:
            mine, theirs = assigned_tasks(first.log()), assigned_tasks(second.log())
            return len(mine) == 2 and len(theirs) == 2 and not mine & theirs

        await while_running([first, second], wait_for(shared, timeout=60, message="two tasks on each worker"))
        await produce(kafka_bootstrap, source, records(0, 200))
        await wait_for_counts(kafka_bootstrap, output, expected_counts(200))
        rebalances = second.log().count("assigned tasks")
        held = assigned_tasks(first.log())
        assert await first.stop(signal.SIGTERM) == 0  # a static member does not leave the group on stop
        restarted = WorkerProcess(APP, kafka_bootstrap, app_id, app_settings=settings, name="first",
                                  state_dir=first.state_dir,
                                  extra_args=["--set", f"group_instance_id={app_id}-first",
                                              "--set", "session_timeout_ms=20000"]).start()
        await restarted.wait_for_log("assigned tasks")
        assert assigned_tasks(restarted.log()) == held
        await produce(kafka_bootstrap, source, records(200, 400))
        await while_running([restarted, second], wait_for_counts(kafka_bootstrap, output, expected_counts(400)))
        assert second.log().count("assigned tasks") == rebalances, "the other worker went through a rebalance"
    finally:
        for process in (first, second, restarted):
            if process is not None and process.process is not None:
                await process.stop()


async def changelog_ends(bootstrap: str, app_id: str) -> dict[int, int]:
    return await end_offsets(bootstrap, f"{app_id}-{STORE}-changelog")


async def standby_caught_up(worker: Worker, bootstrap: str, app_id: str) -> bool:
    assert worker.standbys is not None
    ends = await changelog_ends(bootstrap, app_id)
    offsets = worker.standbys.offsets()
    return bool(offsets) and all(offset >= ends[partition] for (_, partition), offset in offsets.items())


async def test_standby_failover_restores_only_the_tail(kafka_bootstrap, new_topic, tmp_path, monkeypatch) -> None:
    source, output = await new_topic("standby-in", partitions=2), await new_topic("standby-out", partitions=2)
    monkeypatch.setenv("STREAMER_APP_INPUT", source)
    monkeypatch.setenv("STREAMER_APP_OUTPUT", output)
    app_id = f"standby-{uuid.uuid4().hex[:8]}"
    workers = [in_process_worker(app_id, kafka_bootstrap, tmp_path / name, num_standby_replicas=1) for name in "ab"]
    running = [asyncio.create_task(w.run()) for w in workers]
    first, second = workers
    try:
        await wait_for(lambda: len(first.tasks) == 1 and len(second.tasks) == 1 and first.ready() and second.ready(),
                       timeout=60, message="one task on each worker")
        await produce(kafka_bootstrap, source, records(0, 3000, keys=1000))
        await wait_for_counts(kafka_bootstrap, output, expected_counts(3000, keys=1000))
        for worker in workers:
            assert worker.standbys is not None and len(worker.standbys.tasks) == 1
            await wait_for(lambda w=worker: standby_caught_up(w, kafka_bootstrap, app_id), timeout=30,
                           message="the standby to catch up")
        ends = await changelog_ends(kafka_bootstrap, app_id)
        for worker in workers:  # the standby metrics: every changelog record applied, then no lag
            assert worker.standbys is not None
            ((_, partition),) = worker.standbys.tasks
            labels = {"task": f"0_{partition}", "store": STORE}
            registry = worker.metrics.registry
            await wait_for(lambda r=registry, s=labels: r.get_sample_value("streamer_standby_lag_records", s) == 0,
                           timeout=30, message="the standby lag gauge to reach 0")
            assert registry.get_sample_value("streamer_standby_records_total", labels) == ends[partition]
            assert registry.get_sample_value("streamer_restore_records_total", {"store": STORE}) in (None, 0.0)
        standby_of_second = next(iter(first.standbys.tasks)) if first.standbys is not None else None
        before = restored(first)
        second.stop()
        await running.pop()
        await wait_for(lambda: len(first.tasks) == 2 and first.ready(), timeout=60,
                       message="the first worker to take the second one's task over")
        ends = await changelog_ends(kafka_bootstrap, app_id)
        assert restored(first) - before < min(ends.values()) / 10, "the failover restored more than a tail"
        assert standby_of_second is not None
        gone = {"task": f"0_{standby_of_second[1]}", "store": STORE}
        assert first.metrics.registry.get_sample_value("streamer_standby_lag_records", gone) is None, \
            "a standby made active still reports its standby lag"
        await produce(kafka_bootstrap, source, records(3000, 4000, keys=1000))
        await wait_for_counts(kafka_bootstrap, output, expected_counts(4000, keys=1000))
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.gather(*running)


async def test_a_task_moves_to_a_new_worker_only_once_its_warm_up_caught_up(
        kafka_bootstrap, new_topic, tmp_path, monkeypatch) -> None:
    source, output = await new_topic("warmup-in", partitions=2), await new_topic("warmup-out", partitions=2)
    monkeypatch.setenv("STREAMER_APP_INPUT", source)
    monkeypatch.setenv("STREAMER_APP_OUTPUT", output)
    app_id = f"warmup-{uuid.uuid4().hex[:8]}"
    settings: dict[str, Any] = {"acceptable_recovery_lag": 100, "probing_rebalance_interval_ms": 3000}
    first = in_process_worker(app_id, kafka_bootstrap, tmp_path / "a", **settings)
    running = [asyncio.create_task(first.run())]
    second: Worker | None = None
    try:
        await produce(kafka_bootstrap, source, records(0, 2000, keys=1000))
        await wait_for_counts(kafka_bootstrap, output, expected_counts(2000, keys=1000))
        second = in_process_worker(app_id, kafka_bootstrap, tmp_path / "b", **settings)
        running.append(asyncio.create_task(second.run()))
        # Its state is 1000 records behind, more than the 100 acceptable: it warms up first.
        await wait_for(lambda: second.standbys is not None and second.standbys.tasks and first.ready(),
                       timeout=60, message="a warm-up on the new worker")
        assert not second.tasks and len(first.tasks) == 2, "a task moved before its warm-up caught up"
        await wait_for(lambda: len(second.tasks) == 1 and second.ready(), timeout=60,
                       message="the probing rebalance to move the caught-up task")
        assert restored(second) < 100, "the moved task restored more than the acceptable lag"
        await produce(kafka_bootstrap, source, records(2000, 3000, keys=1000))
        await wait_for_counts(kafka_bootstrap, output, expected_counts(3000, keys=1000))
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        await asyncio.gather(*running)
