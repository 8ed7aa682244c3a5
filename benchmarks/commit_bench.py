"""What one exactly-once commit costs a task, phase by phase, against a real broker.

    .venv/bin/python -m benchmarks.commit_bench [--commits 50] [--partitions 8] [--records 100] [--bootstrap HOST:PORT]

A task's transactional producer and record collector (the runtime's own) write
``--records`` records to each of ``--partitions`` partitions, then commit as the worker
does: flush (send what is pending, wait for the acks), add the input offsets to the
transaction, commit it and open the next. Each phase is timed, median over ``--commits``.
The same is done with the batches handed to the producer before the flush, so they
linger for ``linger_ms`` as during processing: the difference is what closing the
batches at flush saves every commit. No other load runs, so these are lower bounds of
what a busy worker sees.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.measure import wait_until_ready
from benchmarks.run import broker
from streamer.config import StreamerConfig
from streamer.runtime.collector import RecordCollector
from streamer.runtime.transactions import commit_transaction, start_task_producer

PHASES = ("flush", "offsets+commit")


async def measure(bootstrap: str, commits: int, partitions: int, records: int, lingering: bool) -> dict[str, float]:
    """Median milliseconds per phase."""
    topic = f"commit-bench-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    await wait_until_ready(admin, topic, partitions)
    config = StreamerConfig(application_id=topic, bootstrap_servers=bootstrap, processing_guarantee="exactly_once")
    producer = await start_task_producer(config, "0_0")
    collector = RecordCollector(producer, {topic: partitions})
    keys = [f"key-{i}".encode() for i in range(records)]
    values = [b"v" * 100] * records
    timings: dict[str, list[float]] = {phase: [] for phase in PHASES}
    try:
        for commit in range(commits + 1):
            for partition in range(partitions):
                collector.send(topic, keys, values, [int(time.time() * 1000)] * records, [None] * records,
                               [partition] * records)
            if lingering:
                await collector.drain()  # what a processing pass does: the batches linger in the producer
            began = time.perf_counter()
            await collector.flush()
            flushed = time.perf_counter()
            await commit_transaction(producer, {TopicPartition(topic, 0): commit + 1}, f"{topic}-group")
            done = time.perf_counter()
            if commit:  # the first one also pays for connections and coordinator look-ups
                timings["flush"].append((flushed - began) * 1000)
                timings["offsets+commit"].append((done - flushed) * 1000)
    finally:
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()
    return {phase: statistics.median(values) for phase, values in timings.items()}


async def compare(bootstrap: str, commits: int, partitions: int, records: int) -> None:
    print(f"{commits} commits of {partitions} x {records} records; median ms per phase")
    print(f"{'batches at flush':<34}" + "".join(f"{phase:>16}" for phase in PHASES))
    for lingering, label in ((True, "lingering (sent before the flush)"), (False, "closed by the flush")):
        medians = await measure(bootstrap, commits, partitions, records, lingering)
        print(f"{label:<34}" + "".join(f"{medians[phase]:>16.1f}" for phase in PHASES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--records", type=int, default=100, help="per partition and commit")
    parser.add_argument("--bootstrap", default=None, help="an existing broker instead of the dev broker")
    args = parser.parse_args()
    with broker(args.bootstrap) as bootstrap:
        asyncio.run(compare(bootstrap, args.commits, args.partitions, args.records))


if __name__ == "__main__":
    main()
