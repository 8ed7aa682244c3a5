"""Restore throughput: changelog records per second from Kafka into RocksDB stores.

    .venv/bin/python benchmarks/restore_bench.py [--records 1000000] [--partitions 4] [--rounds 3]
        [--key-order sequential|shuffled] [--bootstrap HOST:PORT]

Fills a compacted changelog topic (16-byte keys, 100-byte values, every key once), then,
round by round, times the runtime's Restorer bringing one RocksDB store per partition up
to the end, all partitions at once, two ways:

- **from empty**: fresh stores, no changelog offset, as a worker that lost its disk: the
  restorer bulk loads them (sorted SST files, ingested). Target: >= 1.5M records/s.
- **into existing**: the same stores, now full, with their offset set back to 0, as a
  store far behind its changelog: every fetch is a write batch over existing keys.
  Target: >= 700k records/s.

``--key-order shuffled`` writes each partition's keys in a random order (a real
changelog's order) instead of ascending. Figures are medians over the rounds; CPU per
record is this process's user + system time during the restore (RocksDB's background
threads included) over the records. The broker shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamer.runtime.gc_tuning import tune_for_throughput
from streamer.runtime.restorer import Restorer
from streamer.state import WriteCache, open_store

TARGETS = {"from empty": 1_500_000, "into existing": 700_000}


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    from streamer.devbroker import DevBroker

    with DevBroker() as dev:
        yield dev.bootstrap_servers


async def fill(bootstrap: str, topic: str, records: int, partitions: int, shuffled: bool) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=1_000_000,
                                max_request_size=2_000_000)
    await producer.start()
    try:
        pending = []
        for partition in range(partitions):
            indexes = list(range(partition, records, partitions))
            if shuffled:
                random.Random(partition).shuffle(indexes)
            batch = producer.create_batch()
            for index in indexes:
                key, value = f"key-{index:012d}".encode(), b"v" * 100
                if batch.append(key=key, value=value, timestamp=None) is None:
                    pending.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def restore_once(bootstrap: str, targets: dict[TopicPartition, WriteCache]) -> tuple[float, float]:
    """Seconds and CPU seconds the Restorer takes to bring ``targets`` to their changelogs' ends."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    restorer = Restorer(consumer, log_progress=False)
    try:
        before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        await restorer.restore(targets)
        elapsed = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        await restorer.close()
        await consumer.stop()
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


async def measure(bootstrap: str, records: int, partitions: int, rounds: int = 1,
                  shuffled: bool = False) -> dict[str, float]:
    """Median records/s of each way over ``rounds`` interleaved rounds; prints every round."""
    topic = f"restore-bench-{uuid.uuid4().hex[:8]}-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs={"cleanup.policy": "compact"})])
    try:
        await fill(bootstrap, topic, records, partitions, shuffled)
        rates: dict[str, list[float]] = {way: [] for way in TARGETS}
        cpus: dict[str, list[float]] = {way: [] for way in TARGETS}
        for round_ in range(rounds):
            directory = Path(tempfile.mkdtemp(prefix="restore-bench-"))
            targets = {TopicPartition(topic, p): WriteCache(open_store("rocksdb", directory / str(p), "store"))
                       for p in range(partitions)}
            try:
                for way in TARGETS:
                    if way == "into existing":
                        for cache in targets.values():  # full, but 0 records restored: all of them again
                            cache.store.write_batch((), 0)
                    elapsed, cpu = await restore_once(bootstrap, targets)
                    rates[way].append(records / elapsed)
                    cpus[way].append(cpu / records * 1e6)
                    keys = sum(cache.store.approximate_count() for cache in targets.values())
                    print(f"round {round_ + 1} {way:<13}: {records:,} records ({keys:,} keys by RocksDB's estimate) "
                          f"in {elapsed:.2f}s: {records / elapsed:,.0f} records/s, "
                          f"CPU {cpu / records * 1e6:.2f} µs/record", flush=True)
            finally:
                for cache in targets.values():
                    cache.store.destroy()
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
        await admin.close()
    medians = {way: statistics.median(values) for way, values in rates.items()}
    order = "shuffled" if shuffled else "sequential"
    print(f"\n{records:,} records over {partitions} partitions, {order} keys, medians of {rounds} rounds:")
    for way, rate in medians.items():
        verdict = "met" if rate >= TARGETS[way] else "missed"
        print(f"  {way:<13} {rate:>11,.0f} records/s  CPU {statistics.median(cpus[way]):.2f} µs/record  "
              f"(target {TARGETS[way]:,}: {verdict})")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--key-order", choices=("sequential", "shuffled"), default="sequential")
    parser.add_argument("--bootstrap", default=None, help="an existing broker instead of the dev broker")
    args = parser.parse_args()
    tune_for_throughput()  # as the worker does before it restores anything
    with broker(args.bootstrap) as bootstrap:
        asyncio.run(measure(bootstrap, args.records, args.partitions, args.rounds, args.key_order == "shuffled"))


if __name__ == "__main__":
    main()
