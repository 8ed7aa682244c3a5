"""Exactly-once v1 (a transactional producer per task) against v2 (one per worker), by partitions per worker.

    .venv/bin/python -m benchmarks.eos_bench [--records 100000] [--partitions 8,64] [--rounds 2]
                                             [--workload stateless] [--bootstrap HOST:PORT --broker-pid PID]

One ``streamer run`` worker reads an input of ``--partitions`` partitions (so it runs that
many tasks) and writes the workload's output, once per guarantee, interleaved over
``--rounds`` (the machine is noisy). Each run is timed by the harness's own ``timed_run``
(start to the last output visible to read_committed) and reports, besides its figures:

- commit latency: mean and largest bucket-median of ``streamer_commit_latency_seconds``
  (one sample per commit of all the worker's tasks), scraped from the worker's /metrics;
- commits per second and transaction aborts;
- broker CPU: the broker JVM's user+system time during the run, per input record and as
  a share of one core over the run.

Starts the project's dev broker unless ``--bootstrap`` is given (then broker CPU needs
``--broker-pid``). Medians over the rounds are printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.dataset import TOPIC_CONFIGS, DataSpec, Dataset, preload
from benchmarks.lineup import Streamer
from benchmarks.measure import RunContext, RunResult, timed_run, wait_until_ready
from benchmarks.process import cpu_seconds
from benchmarks.workloads import WORKLOADS

GUARANTEES = ("exactly_once", "exactly_once_v2")
COMMIT_INTERVAL_MS = 100
SCRAPE_EVERY_S = 0.2


@dataclass
class Figures:
    """One run: the harness's result plus what the worker's metrics and the broker's CPU say."""

    guarantee: str
    partitions: int
    result: RunResult
    commits: float = 0.0
    commit_mean_ms: float | None = None
    aborts: float = 0.0
    broker_cpu_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.result.status == "ok"

    def broker_us_per_record(self, records: int) -> float | None:
        return None if self.broker_cpu_s is None else self.broker_cpu_s / records * 1e6

    def broker_core_share(self) -> float | None:
        elapsed = self.result.elapsed_s
        return None if self.broker_cpu_s is None or not elapsed else self.broker_cpu_s / elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metric(text: str, name: str) -> float:
    """Sum of the samples of ``name`` (no labels on the ones read here)."""
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def _scrape(port: int, last: dict[str, str], running: asyncio.Event) -> None:
    """Keep the latest /metrics text of the worker while it runs (it is gone after the run)."""
    url = f"http://127.0.0.1:{port}/metrics"
    while not running.is_set():
        with contextlib.suppress(OSError):
            body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).read().decode())
            last["text"] = body
        await asyncio.sleep(SCRAPE_EVERY_S)


async def one_run(ctx: RunContext, workload: str, guarantee: str, run: int, broker_pid: int | None) -> Figures:
    port = _free_port()
    ctx.extra_env["STREAMER_METRICS_PORT"] = str(port)
    last: dict[str, str] = {}
    done = asyncio.Event()
    scraper = asyncio.create_task(_scrape(port, last, done))
    cpu_before = cpu_seconds(broker_pid) if broker_pid is not None else None
    try:
        result = await timed_run(ctx, Streamer(), WORKLOADS[workload], guarantee, run)
    finally:
        done.set()
        await scraper
    cpu_after = cpu_seconds(broker_pid) if broker_pid is not None else None
    figures = Figures(guarantee, ctx.data.spec.partitions, result)
    if cpu_before is not None and cpu_after is not None:
        figures.broker_cpu_s = cpu_after - cpu_before
    text = last.get("text", "")
    count = _metric(text, "streamer_commit_latency_seconds_count")
    if count:
        figures.commit_mean_ms = _metric(text, "streamer_commit_latency_seconds_sum") / count * 1000
    figures.commits = count
    figures.aborts = _metric(text, "streamer_transaction_aborts_total")
    return figures


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _line(f: Figures, records: int) -> str:
    r = f.result
    return (f"{f.guarantee:<16}{f.partitions:>5}  {r.status:<7}{_fmt(r.records_per_s, '>10,.0f')}"
            f"{_fmt(f.commit_mean_ms, '>10.1f')}{f.commits:>8.0f}{f.aborts:>7.0f}{_fmt(r.peak_rss_mb, '>9.0f')}"
            f"{_fmt(r.cpu_us_per_record, '>10.1f')}{_fmt(f.broker_us_per_record(records), '>11.1f')}"
            f"{_fmt(f.broker_core_share(), '>9.2f')}")


HEADER = (f"{'guarantee':<16}{'parts':>5}  {'status':<7}{'rec/s':>10}{'commit ms':>10}{'commits':>8}{'aborts':>7}"
          f"{'RSS MB':>9}{'us/rec':>10}{'broker us':>11}{'broker c':>9}")


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


async def bench(bootstrap: str, broker_pid: int | None, records: int, partition_counts: list[int], rounds: int,
                workload: str, logs: Path) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    session = uuid.uuid4().hex[:6]
    figures: list[Figures] = []
    print(f"{records} records, workload {workload}, commit interval {COMMIT_INTERVAL_MS} ms; "
          f"us/rec: worker CPU per record; broker us: broker CPU per record; broker c: broker cores busy")
    print(HEADER, flush=True)
    try:
        for partitions in partition_counts:
            topic = f"eos-bench-{session}-in-{partitions}"
            await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=TOPIC_CONFIGS)])
            await wait_until_ready(admin, topic, partitions)
            data: Dataset = await preload(bootstrap, topic, DataSpec(records=records, partitions=partitions))
            ctx = RunContext(bootstrap, data, f"{session}p{partitions}", logs, 900.0,
                             {g: COMMIT_INTERVAL_MS for g in GUARANTEES}, admin)
            for round_ in range(rounds):
                order = GUARANTEES if round_ % 2 == 0 else GUARANTEES[::-1]
                for guarantee in order:
                    run = round_ * len(GUARANTEES) + GUARANTEES.index(guarantee)
                    f = await one_run(ctx, workload, guarantee, run, broker_pid)
                    figures.append(f)
                    print(_line(f, records) + ("" if f.ok else f"  {f.result.error}"), flush=True)
            await admin.delete_topics([topic])
    finally:
        await admin.close()
    print(f"\nmedians over {rounds} rounds")
    print(HEADER)
    for partitions in partition_counts:
        for guarantee in GUARANTEES:
            runs = [f for f in figures if f.ok and f.guarantee == guarantee and f.partitions == partitions]
            if not runs:
                print(f"{guarantee:<16}{partitions:>5}  no successful run")
                continue
            print(f"{guarantee:<16}{partitions:>5}  {'ok':<7}"
                  f"{_fmt(_median([f.result.records_per_s for f in runs]), '>10,.0f')}"
                  f"{_fmt(_median([f.commit_mean_ms for f in runs]), '>10.1f')}"
                  f"{_median([f.commits for f in runs]) or 0:>8.0f}{_median([f.aborts for f in runs]) or 0:>7.0f}"
                  f"{_fmt(_median([f.result.peak_rss_mb for f in runs]), '>9.0f')}"
                  f"{_fmt(_median([f.result.cpu_us_per_record for f in runs]), '>10.1f')}"
                  f"{_fmt(_median([f.broker_us_per_record(records) for f in runs]), '>11.1f')}"
                  f"{_fmt(_median([f.broker_core_share() for f in runs]), '>9.2f')}")


@contextlib.contextmanager
def _broker(bootstrap: str | None, pid: int | None) -> Iterator[tuple[str, int | None]]:
    if bootstrap:
        yield bootstrap, pid
        return
    from streamer.devbroker import DevBroker
    dev = DevBroker()
    print("starting the dev broker ...", flush=True)
    dev.start(timeout=90)
    try:
        yield dev.bootstrap_servers, dev.node_pid(0)
    finally:
        dev.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--partitions", default="8,64", help="comma-separated partition counts (tasks per worker)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workload", default="stateless", choices=("stateless", "count"))
    parser.add_argument("--bootstrap", default=None, help="an existing broker instead of the dev broker")
    parser.add_argument("--broker-pid", type=int, default=None, help="that broker's pid, for its CPU time")
    args = parser.parse_args()
    counts = [int(p) for p in args.partitions.split(",")]
    started = time.monotonic()
    with _broker(args.bootstrap, args.broker_pid) as (bootstrap, pid), \
            tempfile.TemporaryDirectory(prefix="eos-bench-") as logs:
        asyncio.run(bench(bootstrap, pid, args.records, counts, args.rounds, args.workload, Path(logs)))
    print(f"took {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
