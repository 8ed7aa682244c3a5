"""Soak: one worker under steady input for minutes; is its memory flat and its lag bounded?

    .venv/bin/python -m benchmarks.soak [--minutes 10] [--rate 5000] [--workload count]
        [--guarantee at_least_once|exactly_once] [--partitions 8] [--keys 100000] [--bootstrap HOST:PORT]

Starts the dev broker (unless ``--bootstrap``), one ``streamer run`` of a benchmark app
with its metrics endpoint, and a producer that sends ``--rate`` records/s spread over
``--keys`` keys. Every ``--sample-s`` it prints the worker's resident memory (VmRSS, not
the peak), its CPU use and its consumer lag (from /metrics). After the run it waits for
the lag to reach 0, stops the worker with SIGTERM and checks the count workload's last
output per key against what was sent. It ends with a verdict: the RSS slope after the
warm-up in MB per minute, the largest lag, and whether the counts are exact (exactly-once)
or at least complete (at-least-once). Not part of the test suite: it takes minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.contenders.spec import AppSpec
from benchmarks.lineup import Streamer
from benchmarks.measure import wait_until_ready
from benchmarks.process import ContenderProcess, cpu_seconds
from benchmarks.run import broker

RESULTS = Path(__file__).resolve().parent / "results"
#: A run's RSS counts as flat when it grows by less than this after the warm-up.
FLAT_MB_PER_MIN = 1.0
DRAIN_TIMEOUT_S = 120.0


@dataclass
class Sample:
    """One look at the worker: seconds since input began, records sent, RSS, CPU share, lag."""

    elapsed_s: float
    sent: int
    rss_mb: float
    cpu_percent: float
    lag: int


def vm_rss_mb(pid: int) -> float:
    """The resident memory of ``pid`` now (the peak says nothing about a leak)."""
    with open(f"/proc/{pid}/status", "rb") as handle:
        for line in handle:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def scrape_lag(port: int) -> int:
    """The sum of the worker's consumer lag gauges; -1 while the endpoint does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return -1
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("streamer_consumer_lag_records{")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SteadyProducer:
    """Sends ``rate`` records a second in 10 ms slices, counting what each key was sent."""

    SLICE_S = 0.01

    def __init__(self, bootstrap: str, topic: str, rate: int, keys: int) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        self.topic, self.rate, self.keys = topic, rate, keys
        self.sent = 0
        self.per_key: Counter[bytes] = Counter()

    async def run(self, seconds: float) -> None:
        await self.producer.start()
        try:
            began = time.monotonic()
            while (now := time.monotonic()) - began < seconds:
                due = int((now - began) * self.rate)
                while self.sent < due:
                    key = f"key-{self.sent % self.keys}".encode()
                    value = orjson.dumps({"id": self.sent, "amount": self.sent % 1000, "user": "soak"})
                    await self.producer.send(self.topic, value, key=key)
                    self.per_key[key] += 1
                    self.sent += 1
                await asyncio.sleep(self.SLICE_S)  # pacing of the input, not a wait for a condition
            await self.producer.flush()
        finally:
            await self.producer.stop()


async def last_counts(bootstrap: str, topic: str, partition_count: int) -> dict[bytes, int]:
    """The last count the worker wrote for each key (read_committed), reading to the end once."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partition_count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: dict[bytes, int] = {}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for messages in (await consumer.getmany(timeout_ms=1000, max_records=50_000)).values():
                for message in messages:
                    if message.key is not None and message.value is not None:
                        found[message.key] = int(orjson.loads(message.value))
        return found
    finally:
        await consumer.stop()


def verdict(samples: list[Sample], warmup_s: float, guarantee: str, sent: Counter[bytes],
            counted: dict[bytes, int]) -> dict[str, object]:
    after = [s for s in samples if s.elapsed_s >= warmup_s] or samples
    slope = 0.0
    if len(after) >= 2:
        slope = statistics.linear_regression([s.elapsed_s / 60 for s in after], [s.rss_mb for s in after]).slope
    wrong = [k for k, n in sent.items() if (counted.get(k, 0) != n if guarantee == "exactly_once"
                                             else counted.get(k, 0) < n)]
    return {
        "rss_after_warmup_mb": round(after[0].rss_mb, 1), "rss_end_mb": round(samples[-1].rss_mb, 1),
        "rss_peak_after_warmup_mb": round(max(s.rss_mb for s in after), 1),
        "rss_slope_mb_per_min": round(slope, 2), "rss_flat": abs(slope) < FLAT_MB_PER_MIN,
        "max_lag": max(s.lag for s in samples), "median_cpu_percent": round(statistics.median(
            s.cpu_percent for s in samples), 1),
        "keys_wrong": len(wrong), "counts": "exact" if guarantee == "exactly_once" else "complete",
    }


async def soak(args: argparse.Namespace, bootstrap: str) -> dict[str, object]:
    suffix = uuid.uuid4().hex[:8]
    spec = AppSpec(bootstrap=bootstrap, input=f"soak-in-{suffix}", output=f"soak-out-{suffix}",
                   app_id=f"soak-{suffix}", workload=args.workload, guarantee=args.guarantee,
                   state_dir=tempfile.mkdtemp(prefix="streamer-soak-"), partitions=args.partitions,
                   commit_interval_ms=args.commit_interval_ms)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(spec.input, args.partitions, 1),
                                   NewTopic(spec.output, args.partitions, 1)])
        for topic in (spec.input, spec.output):
            await wait_until_ready(admin, topic, args.partitions)
    finally:
        await admin.close()
    port = free_port()
    contender = Streamer()
    contender.prepare()
    log = Path(spec.state_dir) / "worker.log"
    worker = ContenderProcess(contender.argv(spec) + ["--metrics-port", str(port)],
                              env={**os.environ, **spec.to_env()}, cwd=Path.cwd(), log_path=log)
    producer = SteadyProducer(bootstrap, spec.input, args.rate, args.keys)
    sending = asyncio.create_task(producer.run(args.minutes * 60))
    samples: list[Sample] = []
    began = time.monotonic()
    cpu_then, then = cpu_seconds(worker.pid) or 0.0, began
    print(f"{'t (s)':>7} {'sent':>10} {'RSS MB':>8} {'CPU %':>6} {'lag':>8}", flush=True)
    try:
        while not sending.done():
            await asyncio.wait({sending}, timeout=args.sample_s)
            if not worker.running():
                raise SystemExit(f"the worker exited with {worker.popen.returncode}:\n{worker.tail()}")
            now, cpu = time.monotonic(), cpu_seconds(worker.pid) or 0.0
            sample = Sample(round(now - began, 1), producer.sent, round(vm_rss_mb(worker.pid), 1),
                            round(100 * (cpu - cpu_then) / max(now - then, 1e-9), 1), scrape_lag(port))
            cpu_then, then = cpu, now
            samples.append(sample)
            print(f"{sample.elapsed_s:>7.0f} {sample.sent:>10,} {sample.rss_mb:>8.1f} {sample.cpu_percent:>6.1f} "
                  f"{sample.lag:>8,}", flush=True)
        await sending
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while scrape_lag(port) != 0:
            if time.monotonic() > deadline:
                raise SystemExit(f"lag did not reach 0 within {DRAIN_TIMEOUT_S:.0f}s after the input stopped")
            await asyncio.sleep(0.5)  # polling the worker's metrics, bounded by the deadline above
    finally:
        code = worker.stop()
    if code != 0:
        raise SystemExit(f"the worker exited with {code} on SIGTERM:\n{worker.tail()}")
    counted = await last_counts(bootstrap, spec.output, args.partitions) if args.workload == "count" else {}
    summary = verdict(samples, args.warmup_s, args.guarantee, producer.per_key, counted) if counted else {}
    return {"settings": vars(args), "samples": [asdict(s) for s in samples], "verdict": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=5000, help="records per second")
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--workload", choices=["count"], default="count")
    parser.add_argument("--guarantee", choices=["at_least_once", "exactly_once"], default="at_least_once")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--commit-interval-ms", type=int, default=100)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=60.0, help="samples before this are not in the slope")
    parser.add_argument("--bootstrap", default=None)
    args = parser.parse_args(argv)
    with broker(args.bootstrap) as bootstrap:
        result = asyncio.run(soak(args, bootstrap))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["verdict"], indent=2))
    print(f"samples written to {path}")
    verdict_ok = result["verdict"]
    return 0 if isinstance(verdict_ok, dict) and verdict_ok.get("keys_wrong") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
