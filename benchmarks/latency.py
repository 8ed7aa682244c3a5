"""Latency mode: input at a fixed rate for a fixed time, end-to-end latency per contender.

    .venv/bin/python -m benchmarks.latency [--rate 20000] [--seconds 20] [--partitions 8]
        [--contenders ceiling,streamer,kafka-streams,quix] [--guarantees at_least_once,exactly_once]
        [--commit-interval-ms MS] [--bootstrap HOST:PORT] [--json PATH]

Each run gets a fresh input and output topic and starts the contender on the stateless
workload. Once its first output for a warm-up record is visible, the harness produces
``--rate`` records per second for ``--seconds`` seconds, in 10 ms slices, each record's
value carrying the wall-clock time it was produced (``ts``, the stateless workload copies
it to its output). A ``read_committed`` consumer reads the output; a record's latency is
the time it was seen minus its ``ts``. Every record passes the workload's filter, so every
input has one output. p50/p95/p99 are over all timed records; a run whose outputs do not
all arrive within 60 s of the end is reported with the share seen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.cache import Unavailable
from benchmarks.contenders.spec import GUARANTEES, AppSpec
from benchmarks.dataset import TOPIC_CONFIGS
from benchmarks.lineup import REPO, Contender, lineup
from benchmarks.measure import _cleanup, wait_until_ready
from benchmarks.process import ContenderProcess
from benchmarks.run import BOOTSTRAP_ENV, COMMIT_INTERVAL_MS, broker
from streamer.partitioner import default_partition

SLICE_S = 0.01
KEYS = 1000
DRAIN_S = 60.0


def record(number: int, now_ms: int) -> tuple[bytes, bytes]:
    """A stateless-workload record that passes the filter (amount 1) stamped with its production time."""
    key = b"user-%05d" % (number % KEYS)
    value = {"id": number, "user": key.decode(), "amount": 1, "currency": "EUR", "ts": now_ms, "note": "x" * 30}
    return key, orjson.dumps(value)


async def produce_paced(producer: AIOKafkaProducer, topic: str, partitions: int, rate: int, seconds: float,
                        first: int) -> int:
    """Produce ``rate`` records per second for ``seconds``, slice by slice; returns how many."""
    sent = 0
    began = time.perf_counter()
    partition_of = {n: default_partition(b"user-%05d" % n, partitions) for n in range(KEYS)}
    acks = []
    while (elapsed := time.perf_counter() - began) < seconds:
        due = int(elapsed * rate) + 1
        batches: dict[int, Any] = {}
        now_ms = int(time.time() * 1000)
        while sent < due:
            number = first + sent
            key, value = record(number, now_ms)
            partition = partition_of[number % KEYS]
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=now_ms) is None:
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=now_ms)
            sent += 1
        for partition, batch in batches.items():
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.sleep(max(0.0, began + (sent / rate) - time.perf_counter() + SLICE_S / 2))
    await asyncio.gather(*acks)
    return sent


async def one_run(bootstrap: str, admin: AIOKafkaAdminClient, contender: Contender, guarantee: str,
                  args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    short = "eos" if guarantee == "exactly_once" else "alos"
    app_id = f"latency-{uuid.uuid4().hex[:6]}-{contender.name}-{short}"
    interval = args.commit_interval_ms or COMMIT_INTERVAL_MS[guarantee]
    spec = AppSpec(bootstrap=bootstrap, input=f"{app_id}-input", output=f"{app_id}-output", app_id=app_id,
                   workload="stateless", guarantee=guarantee, state_dir=tempfile.mkdtemp(prefix=f"{app_id}-"),
                   partitions=args.partitions, commit_interval_ms=interval)
    result: dict[str, Any] = {"contender": contender.label, "guarantee": guarantee, "commit_interval_ms": interval,
                              "rate": args.rate, "seconds": args.seconds}
    await admin.create_topics([NewTopic(t, args.partitions, 1, topic_configs=TOPIC_CONFIGS)
                               for t in (spec.input, spec.output)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed", auto_offset_reset="earliest")
    process: ContenderProcess | None = None
    latencies: list[float] = []
    try:
        for topic in (spec.input, spec.output):
            await wait_until_ready(admin, topic, args.partitions)
        await producer.start()
        await consumer.start()
        consumer.assign([TopicPartition(spec.output, p) for p in range(args.partitions)])
        await consumer.seek_to_beginning()
        process = ContenderProcess(contender.argv(spec), contender.env(spec), REPO, logs / f"{app_id}.log")
        seen = await _warm_up(producer, consumer, spec, process)
        reader = asyncio.get_running_loop().create_task(_read(consumer, latencies))
        sent = await produce_paced(producer, spec.input, args.partitions, args.rate, args.seconds, seen)
        deadline = time.monotonic() + DRAIN_S
        while len(latencies) < sent and time.monotonic() < deadline and process.running():
            await asyncio.sleep(0.05)  # the reader fills ``latencies``; the deadline bounds the wait
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        process.sample()
        ordered = sorted(latencies)
        result.update(sent=sent, seen=len(latencies), cpu_s=process.cpu_s, peak_rss_mb=process.peak_rss_mb)
        if ordered:
            result.update({f"p{q}_ms": ordered[min(len(ordered) - 1, len(ordered) * q // 100)] for q in (50, 95, 99)},
                          mean_ms=statistics.fmean(ordered), max_ms=ordered[-1])
    except Exception as error:  # a contender that fails is reported, the others still run
        result["error"] = f"{type(error).__name__}: {error}"
    finally:
        if process is not None:
            await asyncio.to_thread(process.stop, 20.0)
        await consumer.stop()
        await producer.stop()
        await _cleanup(admin, app_id)
    return result


async def _warm_up(producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, spec: AppSpec,
                   process: ContenderProcess, timeout_s: float = 120.0) -> int:
    """Send one record per partition until outputs appear (the contender is up); returns records sent."""
    deadline = time.monotonic() + timeout_s
    sent = 0
    while time.monotonic() < deadline:
        if not process.running():
            raise RuntimeError(f"exited with code {process.popen.returncode}; log: {process.log_path}")
        key, value = record(sent, int(time.time() * 1000))
        await producer.send_and_wait(spec.input, value, key=key)
        sent += 1
        fetched = await consumer.getmany(timeout_ms=500)
        if any(fetched.values()):
            # the warm-up outputs still to come are not timed: skip past everything sent so far
            await asyncio.sleep(max(1.0, spec.commit_interval_ms / 1000 * 2))
            await consumer.getmany(timeout_ms=100)
            for tp in consumer.assignment():
                consumer.seek(tp, (await consumer.end_offsets([tp]))[tp])
            return sent
    raise RuntimeError(f"no output within {timeout_s:.0f}s of the start")


async def _read(consumer: AIOKafkaConsumer, latencies: list[float]) -> None:
    while True:
        fetched = await consumer.getmany(timeout_ms=100)
        now_ms = time.time() * 1000
        for messages in fetched.values():
            latencies.extend(now_ms - orjson.loads(m.value)["ts"] for m in messages)


def table(results: list[dict[str, Any]]) -> str:
    header = ("contender", "guarantee", "commit ms", "rate/s", "seen", "p50 ms", "p95 ms", "p99 ms", "CPU s", "RSS MB")
    lines = [header]
    for r in results:
        if "error" in r:
            lines.append((r["contender"], r["guarantee"], str(r["commit_interval_ms"]), f"{r['rate']:,}",
                          "FAILED", r["error"][:60], "", "", "", ""))
            continue
        lines.append((r["contender"], r["guarantee"], str(r["commit_interval_ms"]), f"{r['rate']:,}",
                      f"{r['seen'] / max(r['sent'], 1):.1%}",
                      *(f"{r.get(f'p{q}_ms', float('nan')):,.1f}" for q in (50, 95, 99)),
                      f"{r['cpu_s']:.1f}", f"{r['peak_rss_mb']:,.0f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
           for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=20_000, help="input records per second (default 20k)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long input is produced (default 20)")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--contenders", default="ceiling,streamer,kafka-streams,quix")
    parser.add_argument("--guarantees", default=",".join(GUARANTEES))
    parser.add_argument("--commit-interval-ms", type=int, default=None)
    parser.add_argument("--bootstrap", default=None, help=f"use this broker (default ${BOOTSTRAP_ENV})")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--results-dir", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    known = lineup()
    names = [n.strip() for n in args.contenders.split(",") if n.strip()]
    guarantees = [g.strip() for g in args.guarantees.split(",") if g.strip()]
    unknown = [n for n in names if n not in known] + [g for g in guarantees if g not in GUARANTEES]
    if unknown or args.rate < 1 or args.seconds <= 0:
        raise SystemExit(f"unknown contenders/guarantees {unknown}, or a rate/time below 1")
    contenders = []
    for name in names:
        try:
            known[name].prepare()
            contenders.append(known[name])
        except Unavailable as error:
            print(f"{name} is unavailable: {error}", flush=True)
    logs = args.results_dir / f"latency-logs-{time.strftime('%Y%m%d-%H%M%S')}"
    logs.mkdir(parents=True, exist_ok=True)

    async def run_all(bootstrap: str) -> list[dict[str, Any]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            found = []
            for guarantee in guarantees:
                for contender in contenders:
                    if contender.supports("stateless", guarantee):
                        found.append(await one_run(bootstrap, admin, contender, guarantee, args, logs))
                        print("  " + table([found[-1]]).splitlines()[-1], flush=True)
            return found
        finally:
            await admin.close()

    with broker(args.bootstrap or os.environ.get(BOOTSTRAP_ENV)) as bootstrap:
        results = asyncio.run(run_all(bootstrap))
    print()
    print(table(results))
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0 if any("error" not in r for r in results) else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
