"""CPU per record of the windowed counts' processing path alone, against the plain count.

    .venv/bin/python -m benchmarks.window_bench [--records 40000] [--batch 2000] [--repeat 5] [--profile FILE]

The workloads are the benchmark's own apps (``benchmarks.contenders.streamer_app``:
count, windowed_update, windowed_close), fed as one partition of the end-to-end
benchmark sees its input: synthetic batches from ``benchmarks.pipeline_bench`` with
their timestamps spread evenly over 100 windows of 10 s, so most records open a
window of their key. Each batch goes through the task core (deserialize, the workload,
serialize, partition, batch-append), then its store changes go to the changelog
collector and are applied to RocksDB, as a commit does. Prints the best of ``--repeat``
rounds (one run of each workload per round, so all see the same load on a shared
machine) in µs of CPU per record, and the ratio to the plain count; ``--profile``
writes a cProfile of one windowed-close run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import tempfile
import time
from pathlib import Path
from typing import Callable

from benchmarks.contenders import streamer_app
from benchmarks.contenders.spec import WINDOW_MS, AppSpec
from benchmarks.dataset import BASE_TIMESTAMP_MS, SPAN_WINDOWS
from benchmarks.pipeline_bench import Message, OfflineProducer, batches
from streamer.config import StreamerConfig
from streamer.runtime.collector import RecordCollector
from streamer.runtime.gc_tuning import tune_for_throughput
from streamer.runtime.task_core import TaskCore
from streamer.runtime.task_stores import open_task_stores
from streamer.topology.topology import Topology

WORKLOADS: dict[str, Callable[[], Topology]] = {
    "count": streamer_app.count,
    "windowed-update": streamer_app.windowed_update,
    "windowed-close": streamer_app.windowed_close,
}


def spread(data: list[list[Message]]) -> list[list[Message]]:
    """Re-time the records as the benchmark's dataset does: evenly over ``SPAN_WINDOWS`` windows."""
    total = sum(len(batch) for batch in data)
    number = 0
    for batch in data:
        for message in batch:
            message.timestamp = BASE_TIMESTAMP_MS + number * SPAN_WINDOWS * WINDOW_MS // total
            number += 1
    return data


def run_once(topology: Topology, data: list[list[Message]], directory: Path) -> float:
    """CPU seconds per record for one run of ``data`` through a fresh task."""
    spec = AppSpec()
    sub = topology.subtopologies[0]
    stores = open_task_stores(sub, 0, directory, "rocksdb", spec.app_id)
    topics = {spec.output: spec.partitions, **{topic: 1 for topic in stores.changelogs.values()}}
    collector = RecordCollector(OfflineProducer(), topics)
    task = TaskCore(sub, 0, StreamerConfig(application_id=spec.app_id), collector, stores)
    task.open([])

    async def feed() -> None:
        for batch in data:
            await task.process(spec.input, 0, batch)
            stores.produce_changelogs(collector, batch[-1].timestamp)
            collector.discard()
            stores.apply()

    began = time.process_time()
    asyncio.run(feed())
    elapsed = time.process_time() - began
    task.close()
    return elapsed / sum(len(batch) for batch in data)


def best_of(names: list[str], data: list[list[Message]], repeat: int) -> dict[str, float]:
    """The best run of each workload, taken in rounds of one run each so they all see the same load."""
    best = dict.fromkeys(names, float("inf"))
    for _ in range(repeat):
        for name in names:
            with tempfile.TemporaryDirectory() as directory:
                best[name] = min(best[name], run_once(WORKLOADS[name](), data, Path(directory)))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=40_000, help="one partition's share of 300k, roughly")
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--profile", type=Path, help="write a cProfile of one windowed-close run here")
    args = parser.parse_args()
    data = spread(batches(args.records, args.batch))
    tune_for_throughput()  # as the worker does
    if args.profile is not None:
        with tempfile.TemporaryDirectory() as directory:
            cProfile.runctx("run_once(WORKLOADS['windowed-close'](), data, Path(directory))",
                            globals(), {"data": data, "directory": directory}, str(args.profile))
        return
    figures = best_of(args.workloads.split(","), data, args.repeat)
    plain = figures.get("count")
    for name, seconds in figures.items():
        ratio = f"  {seconds / plain:.2f}x the count" if plain else ""
        print(f"{name:<16} {seconds * 1e6:6.2f} µs CPU per record (best of {args.repeat}){ratio}")


if __name__ == "__main__":
    main()
