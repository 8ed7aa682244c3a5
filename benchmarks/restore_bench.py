"""Restore throughput: changelog records per second from Kafka into RocksDB stores.

    .venv/bin/python benchmarks/restore_bench.py [--records 1000000] [--partitions 4] [--bootstrap HOST:PORT]

Fills a compacted changelog topic (16-byte keys, 100-byte values), then times the
runtime's Restorer bringing one fresh RocksDB store per partition up to the end, all
partitions at once, as a worker does after losing its disk. Target: >= 500k records/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    from streamer.devbroker import DevBroker

    with DevBroker() as dev:
        yield dev.bootstrap_servers


async def fill(bootstrap: str, topic: str, records: int, partitions: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=1_000_000,
                                max_request_size=2_000_000)
    await producer.start()
    try:
        pending = []
        for partition in range(partitions):
            batch = producer.create_batch()
            for index in range(partition, records, partitions):
                key, value = f"key-{index:012d}".encode(), b"v" * 100
                if batch.append(key=key, value=value, timestamp=None) is None:
                    pending.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def measure(bootstrap: str, records: int, partitions: int) -> float:
    topic = f"restore-bench-{uuid.uuid4().hex[:8]}-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs={"cleanup.policy": "compact"})])
    await admin.close()
    await fill(bootstrap, topic, records, partitions)
    directory = Path(tempfile.mkdtemp(prefix="restore-bench-"))
    targets = {TopicPartition(topic, p): WriteCache(open_store("rocksdb", directory / str(p), "store"))
               for p in range(partitions)}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1_048_576, fetch_max_bytes=32 * 1_048_576)
    await consumer.start()
    restorer = Restorer(consumer)
    try:
        began = time.perf_counter()
        await restorer.restore(targets)
        elapsed = time.perf_counter() - began
    finally:
        await restorer.close()
        await consumer.stop()
    restored = sum(cache.store.approximate_count() for cache in targets.values())
    for cache in targets.values():
        cache.store.destroy()
    print(f"restored {records:,} records ({restored:,} keys by RocksDB's estimate) over {partitions} partitions "
          f"in {elapsed:.2f}s: {records / elapsed:,.0f} records/s (target 500,000)")
    return records / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--bootstrap", default=None, help="an existing broker instead of the dev broker")
    args = parser.parse_args()
    tune_for_throughput()  # as the worker does before it restores anything
    with broker(args.bootstrap) as bootstrap:
        asyncio.run(measure(bootstrap, args.records, args.partitions))


if __name__ == "__main__":
    main()
