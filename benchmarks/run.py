"""Throughput of streamer against the aiokafka ceiling and its peers, in one run.

    .venv/bin/python -m benchmarks.run [--records N] [--partitions P] [--keys K] [--runs R]
        [--contenders ceiling,streamer,streamer-v2,quix,faust,kafka-streams]
        [--workloads stateless,count,windowed-update,windowed-close,enrich]
        [--guarantees at_least_once,exactly_once] [--json out.json] [--bootstrap HOST:PORT]

Uses the broker at --bootstrap or $STREAMER_BENCH_BOOTSTRAP, else starts the project's dev
broker for the duration. Loads the input once, then runs every contender on every workload
and guarantee, interleaved and in a rotating order per round (the machine is noisy, so
neighbours in time should be comparable), and reports medians. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.cache import Unavailable
from benchmarks.contenders.spec import GUARANTEES
from benchmarks.dataset import TABLE_TOPIC_CONFIGS, TOPIC_CONFIGS, DataSpec, preload, preload_table
from benchmarks.lineup import REPO, Contender, lineup
from benchmarks.measure import RunContext, RunResult, timed_run, wait_until_ready
from benchmarks.report import Row, machine, rows_json, summarize, table, targets, targets_table
from benchmarks.workloads import WORKLOADS

BOOTSTRAP_ENV = "STREAMER_BENCH_BOOTSTRAP"
#: Kafka Streams' default for exactly-once (and streamer's); at-least-once gets streamer's default.
COMMIT_INTERVAL_MS = {"at_least_once": 5000, "exactly_once": 100}


def _names(text: str, known: list[str] | tuple[str, ...], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise SystemExit(f"unknown {what}: {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}")
    return names


def parse_args(argv: list[str] | None, known_contenders: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="input records (default 1M)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions of every topic (default 8)")
    parser.add_argument("--keys", type=int, default=10_000, help="distinct keys (default 10k)")
    parser.add_argument("--runs", type=int, default=3, help="rounds; figures are medians (default 3)")
    parser.add_argument("--contenders", default=",".join(known_contenders))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--guarantees", default=",".join(GUARANTEES))
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--results-dir", type=Path, default=REPO / "benchmarks" / "results",
                        help="where the JSON and the contenders' logs go (default benchmarks/results)")
    parser.add_argument("--bootstrap", default=os.environ.get(BOOTSTRAP_ENV),
                        help=f"use this broker (default ${BOOTSTRAP_ENV}; unset: start the dev broker)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one run may take (default 900)")
    parser.add_argument("--commit-interval-ms", type=int, default=None,
                        help="for every contender and guarantee (default 5000 at-least-once, 100 exactly-once)")
    parser.add_argument("--kafka-streams-version", default=None,
                        help="Kafka Streams version (default: the dev broker's Kafka version)")
    args = parser.parse_args(argv)
    args.contenders = _names(args.contenders, known_contenders, "contenders")
    args.workloads = _names(args.workloads, list(WORKLOADS), "workloads")
    args.guarantees = _names(args.guarantees, GUARANTEES, "guarantees")
    if min(args.records, args.partitions, args.keys, args.runs) < 1:
        raise SystemExit("--records, --partitions, --keys and --runs must be at least 1")
    return args


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """The given broker, or the project's dev broker started for the duration."""
    if bootstrap:
        yield bootstrap
        return
    try:
        from streamer.devbroker import DevBroker
    except ImportError as error:
        raise SystemExit(f"no broker: pass --bootstrap or set {BOOTSTRAP_ENV} (streamer.devbroker: {error})") from None
    dev = DevBroker()
    print("starting the dev broker ...", flush=True)
    dev.start(timeout=90)
    try:
        yield dev.bootstrap_servers
    finally:
        dev.stop()


def prepare(contenders: list[Contender]) -> dict[str, str]:
    """Install or build each contender; returns the reasons of those that cannot run."""
    unavailable = {}
    for contender in contenders:
        began = time.monotonic()
        print(f"preparing {contender.name} ...", flush=True)
        try:
            contender.prepare()
        except Unavailable as error:
            unavailable[contender.name] = str(error)
            print(f"  {contender.name} is unavailable: {error}", flush=True)
            continue
        print(f"  {contender.label} ready in {time.monotonic() - began:.1f}s", flush=True)
    return unavailable


def not_applicable(args: argparse.Namespace, contenders: list[Contender]) -> dict[tuple[str, str, str], str]:
    """(contender, workload, guarantee) that a ready contender cannot run, and why."""
    found = {}
    for contender in contenders:
        for workload in args.workloads:
            reason = contender.why_not(workload)
            if reason:
                print(f"  {contender.name} cannot run {workload}: {reason}", flush=True)
                found.update({(contender.name, workload, guarantee): reason for guarantee in args.guarantees})
    return found


def _progress(result: RunResult) -> str:
    where = f"{result.workload:<15} {result.guarantee:<13} {result.contender:<13}"
    if result.status == "ok":
        return (f"{where} {result.records_per_s:>11,.0f} rec/s  {result.elapsed_s:6.1f}s  "
                f"CPU {result.cpu_us_per_record or 0:5.1f} µs/rec  peak RSS {result.peak_rss_mb or 0:,.0f} MB")
    return f"{where} {result.status.upper()}: {result.error}"


async def run_all(args: argparse.Namespace, bootstrap: str, contenders: list[Contender], session: str,
                  logs: Path) -> list[RunResult]:
    """Load the input, then every run, interleaved: round by round, contenders in rotating order."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    data_spec = DataSpec(records=args.records, partitions=args.partitions, keys=args.keys)
    topic, table_topic = f"bench-{session}-input", f"bench-{session}-table"
    needs_table = any(WORKLOADS[w].needs_table for w in args.workloads)
    results: list[RunResult] = []
    topics = [NewTopic(topic, args.partitions, 1, topic_configs=TOPIC_CONFIGS)]
    if needs_table:  # co-partitioned with the input: same partition count, same keys
        topics.append(NewTopic(table_topic, args.partitions, 1, topic_configs=TABLE_TOPIC_CONFIGS))
    try:
        await admin.create_topics(topics)
        await wait_until_ready(admin, topic, args.partitions)
        began = time.monotonic()
        data = await preload(bootstrap, topic, data_spec)
        print(f"loaded {args.records:,} records ({data.value_bytes / 1e6:.0f} MB of values, {args.keys:,} keys, "
              f"{args.partitions} partitions) in {time.monotonic() - began:.1f}s", flush=True)
        if needs_table:
            await wait_until_ready(admin, table_topic, args.partitions)
            await preload_table(bootstrap, data, table_topic)
            print(f"loaded the table: {args.keys:,} rows, one per key", flush=True)
        intervals = {g: args.commit_interval_ms or COMMIT_INTERVAL_MS[g] for g in GUARANTEES}
        ctx = RunContext(bootstrap, data, session, logs, args.timeout, intervals, admin)
        for round_ in range(args.runs):
            shift = round_ % max(1, len(contenders))
            order = contenders[shift:] + contenders[:shift]
            print(f"round {round_ + 1}/{args.runs}", flush=True)
            for workload in args.workloads:
                for guarantee in args.guarantees:
                    for contender in order:
                        if contender.supports(workload, guarantee):
                            result = await timed_run(ctx, contender, WORKLOADS[workload], guarantee, round_)
                            results.append(result)
                            print("  " + _progress(result), flush=True)
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics([t.name for t in topics])
        await admin.close()
    return results


def report(args: argparse.Namespace, rows: list[Row], results: list[RunResult], unavailable: dict[str, str],
           lacking: dict[tuple[str, str, str], str], contenders: dict[str, Contender],
           started: datetime.datetime) -> dict[str, Any]:
    return {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "params": {"records": args.records, "partitions": args.partitions, "keys": args.keys, "runs": args.runs,
                   "workloads": args.workloads, "guarantees": args.guarantees,
                   "commit_interval_ms": {g: args.commit_interval_ms or COMMIT_INTERVAL_MS[g] for g in GUARANTEES},
                   "timeout_s": args.timeout},
        "contenders": {name: contenders[name].label for name in args.contenders},
        "unavailable": unavailable,
        "not_applicable": {f"{name} {workload}": reason for (name, workload, _), reason in lacking.items()},
        "summary": rows_json(rows),
        "targets": targets(rows),
        "runs": [r.to_json() for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A topic just made answers "not leader" for a moment; the clients retry, the noise hides the report.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    known = lineup()
    args = parse_args(argv, list(known))
    if args.kafka_streams_version:
        known = lineup(args.kafka_streams_version)
    started = datetime.datetime.now().astimezone()
    session = uuid.uuid4().hex[:6]
    chosen = [known[name] for name in args.contenders]
    unavailable = prepare(chosen)
    runnable = [c for c in chosen if c.name not in unavailable]
    lacking = not_applicable(args, runnable)
    logs = args.results_dir / f"logs-{started:%Y%m%d-%H%M%S}-{session}"
    logs.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    if runnable:
        with broker(args.bootstrap) as bootstrap:
            results = asyncio.run(run_all(args, bootstrap, runnable, session, logs))
    rows = summarize(results, {c.name: c.label for c in chosen}, lacking)
    document = report(args, rows, results, unavailable, lacking, known, started)
    print()
    print(table(rows) if rows else "no runs")
    if document["targets"]:
        print("\n" + targets_table(document["targets"]))
    for name, reason in unavailable.items():
        print(f"\n{name}: could not be installed or built:\n  " + reason.replace("\n", "\n  "))
    for (name, workload), reason in {(c, w): r for (c, w, _), r in lacking.items()}.items():
        print(f"\n{name} {workload}: not available: {reason}")
    for result in results:
        if result.status != "ok":
            print(f"\n{result.contender} {result.workload} {result.guarantee} run {result.run + 1}: "
                  f"{result.status}: {result.error}\n  log: {result.log_path}")
            if result.log_tail:
                print("  " + result.log_tail.replace("\n", "\n  "))
    out = args.results_dir / f"bench-{started:%Y%m%d-%H%M%S}-{session}.json"
    for path in filter(None, (out, args.json)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    print(f"\nresults: {out}" + (f" and {args.json}" if args.json else ""))
    return 0 if any(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
