"""No broker: how much of its queued input a worker's task takes in one pass, and how its runner stops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import ConsumerRecord

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.runtime.task import StreamTask
from streamer.runtime.task_stores import open_task_stores

TP = TopicPartition("in", 0)


class _Producer:
    """Takes every batch at once and counts the records of each."""

    _max_request_size = 1_048_576

    def __init__(self) -> None:
        self.batches: list[int] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(1_000_000, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[None]:
        self.batches.append(batch.record_count())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _fetch(first: int, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [ConsumerRecord("in", 0, offset, 1_000 + offset, 0, b"k", b"v", None, 1, 1, ())
            for offset in range(first, first + count)]


def _task(tmp_path: Path, max_poll_records: int) -> tuple[StreamTask, _Producer]:
    builder = StreamsBuilder()
    builder.stream("in").to("out")
    subtopology = builder.build().subtopologies[0]
    config = StreamerConfig(application_id="app", max_poll_records=max_poll_records)
    producer = _Producer()
    stores = open_task_stores(subtopology, 0, tmp_path, "memory", "app")
    task = StreamTask(subtopology, 0, config, producer, {"in": 1, "out": 1}, stores)  # type: ignore[arg-type]
    task.open_at({TP: (0, None)})
    return task, producer


async def test_a_pass_takes_every_queued_fetch_of_the_partition(tmp_path: Path) -> None:
    """Fetches come far more often than passes end: one pass per fetch would let the queue grow."""
    task, producer = _task(tmp_path, max_poll_records=10_000)
    for first in (0, 12, 24):
        task.enqueue(TP, _fetch(first, 12))
    assert await task._process_queued()
    await task.collector.drain()
    assert producer.batches == [36]
    assert task.consumed[TP] == 36 and task.buffered(TP) == 0
    assert not await task._process_queued()


async def test_a_pass_stops_before_max_poll_records_unless_one_fetch_is_larger(tmp_path: Path) -> None:
    task, _ = _task(tmp_path, max_poll_records=25)
    task.enqueue(TP, _fetch(0, 30))  # larger than the bound by itself: taken whole
    task.enqueue(TP, _fetch(30, 10))
    task.enqueue(TP, _fetch(40, 10))
    task.enqueue(TP, _fetch(50, 10))
    assert await task._process_queued()
    assert task.consumed[TP] == 30 and task.buffered(TP) == 30
    assert await task._process_queued()
    assert task.consumed[TP] == 50 and task.buffered(TP) == 10


async def test_the_runner_stops_even_when_new_input_wakes_it_at_the_same_moment(tmp_path: Path) -> None:
    """The revocation that never ended: input arrived as the worker stopped an idle runner.

    A cancel at that moment was swallowed by asyncio.wait_for (Python 3.11), the runner
    went on processing, and the worker waited for it for ever.
    """
    task, producer = _task(tmp_path, max_poll_records=100)
    runner = asyncio.create_task(task.runner())
    await asyncio.sleep(0)  # idle, waiting for work
    async with task.lock:
        task.enqueue(TP, _fetch(0, 5))  # wakes it
        task.stop_running()
    await asyncio.wait_for(runner, 5)
    assert producer.batches == [] and task.consumed[TP] == 0  # the fetched input waits for the next owner


async def test_a_runner_stopped_before_it_started_makes_no_pass(tmp_path: Path) -> None:
    task, producer = _task(tmp_path, max_poll_records=100)
    task.enqueue(TP, _fetch(0, 5))
    runner = asyncio.create_task(task.runner())
    async with task.lock:  # free: taken without the runner getting a turn
        task.stop_running()
    await asyncio.wait_for(runner, 5)
    assert producer.batches == [] and task.consumed[TP] == 0
    again = asyncio.create_task(task.runner())  # a resumed task runs again
    deadline = asyncio.get_running_loop().time() + 5
    while task.consumed[TP] < 5:
        assert asyncio.get_running_loop().time() < deadline, "the resumed runner processed nothing"
        await asyncio.sleep(0.01)
    async with task.lock:
        task.stop_running()
    await asyncio.wait_for(again, 5)
    assert producer.batches == [5]
