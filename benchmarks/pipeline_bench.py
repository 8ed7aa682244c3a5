"""Per-record cost of streamer's processing path alone: no broker, no network.

    .venv/bin/python benchmarks/pipeline_bench.py [--records 200000] [--batch 10000] [--repeat 5]

Feeds synthetic fetched batches (100-byte JSON values, 10k keys) through a task's
processors (deserialize, the workload, serialize, partition, batch-append into
aiokafka's BatchBuilder) for the benchmark workloads, and prints the best of
``--repeat`` runs in records/s. The end-to-end harness (benchmarks.run) includes
Kafka; this one isolates what streamer itself costs per record, for before/after
comparisons of hot-path changes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import orjson
from aiokafka.producer.message_accumulator import BatchBuilder

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.runtime.collector import RecordCollector
from streamer.runtime.gc_tuning import tune_for_throughput
from streamer.runtime.task_core import TaskCore
from streamer.runtime.task_stores import TaskStores
from streamer.state import WriteCache, open_store
from streamer.topology.topology import Topology


class Message:
    __slots__ = ("key", "value", "timestamp", "headers", "offset")

    def __init__(self, key: bytes, value: bytes, timestamp: int, offset: int) -> None:
        self.key, self.value, self.timestamp, self.headers, self.offset = key, value, timestamp, (), offset


class OfflineProducer:
    """Just enough of a producer for the RecordCollector: real batch builders, no sending."""

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(1_000_000, 0)


def stateless() -> Topology:
    builder = StreamsBuilder()
    (builder.stream("in", key_serde="str", value_serde="json")
        .filter(lambda _k, v: v["amount"] % 4 != 0)
        .map_values(lambda v: {**v, "flag": True})
        .to("out", key_serde="str", value_serde="json"))
    return builder.build()


def count() -> Topology:
    builder = StreamsBuilder()
    (builder.stream("in", key_serde="str", value_serde="json")
        .group_by_key().count("counts").to_stream()
        .to("out", key_serde="str", value_serde="json"))
    return builder.build()


def batches(records: int, batch: int) -> list[list[Message]]:
    rng = random.Random(1)
    messages = [
        Message(f"key-{rng.randrange(10_000)}".encode(),
                orjson.dumps({"id": i, "amount": rng.randrange(1000), "user": "u" * 20, "pad": "x" * 30}),
                1_700_000_000_000 + i, i)
        for i in range(records)
    ]
    return [messages[i:i + batch] for i in range(0, records, batch)]


def run_once(topology: Topology, data: list[list[Message]], directory: Path) -> float:
    sub = topology.subtopologies[0]
    caches = {spec.name: WriteCache(open_store("rocksdb", directory, spec.name)) for spec in sub.stores}
    stores = TaskStores(0, caches, {})
    collector = RecordCollector(OfflineProducer(), {"out": 8})  # type: ignore[arg-type]
    task = TaskCore(sub, 0, StreamerConfig(application_id="bench"), collector, stores)
    task.open([])

    async def feed() -> None:
        for batch in data:
            await task.process("in", 0, batch)
            collector.discard()
            stores.apply()

    began = time.perf_counter()
    asyncio.run(feed())
    elapsed = time.perf_counter() - began
    task.close()
    return sum(len(b) for b in data) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = batches(args.records, args.batch)
    tune_for_throughput()  # as the worker does
    workloads: dict[str, Callable[[], Topology]] = {"stateless": stateless, "count": count}
    for name, build in workloads.items():
        best: Any = 0.0
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as directory:
                best = max(best, run_once(build(), data, Path(directory)))
        print(f"{name:<10} {best:>12,.0f} records/s through the processors (best of {args.repeat})")


if __name__ == "__main__":
    main()
