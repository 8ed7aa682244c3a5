"""The end-to-end demo: a local Kafka broker, the clickstream app, data, and what came out.

    ./scripts/demo            (sets everything up, then runs: python -m apps.demo)

Starts the project's dev broker (unless --bootstrap-servers is given), creates the
topics, writes synthetic clickstream events, runs a `streamer run` worker on
apps.clickstream:topology, reads what it routed to each output topic, prints a summary
with samples, then stops the worker with SIGTERM and the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Iterator

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from apps import clickstream
from apps.clickstream_generator import generate

PARTITIONS = 4


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    from streamer.devbroker import DevBroker

    print("starting a local Kafka broker (first run downloads the jars with Maven) ...", flush=True)
    with DevBroker() as dev:
        print(f"broker ready at {dev.bootstrap_servers}", flush=True)
        yield dev.bootstrap_servers


async def create_topics(bootstrap: str, names: list[str]) -> None:
    """Create the demo's topics and wait until every partition has a leader."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names if n not in existing])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            described = await admin.describe_topics(names)
            if all(t["error_code"] == 0 and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                return
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def read_outputs(bootstrap: str, topics: list[str], expected_min: int, timeout: float) -> dict[str, list]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                isolation_level="read_committed")
    await consumer.start()
    got: dict[str, list] = {t: [] for t in topics}
    deadline = time.monotonic() + timeout
    idle_rounds = 0
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, messages in batches.items():
                got[tp.topic].extend(messages)
            total = sum(len(v) for v in got.values())
            idle_rounds = 0 if batches else idle_rounds + 1
            if total >= expected_min and idle_rounds >= 4:
                break
    finally:
        await consumer.stop()
    return got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap-servers", default=None, help="use this broker instead of starting one")
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    source, routes = clickstream.topics()
    outputs = list(routes.values())
    with broker(args.bootstrap_servers) as bootstrap:
        asyncio.run(create_topics(bootstrap, [source, *outputs]))
        print(f"writing {args.events} clickstream events to {source} ...", flush=True)
        asyncio.run(generate(bootstrap, source, args.events, seed=7))
        state_dir = tempfile.mkdtemp(prefix="streamer-demo-")
        command = [sys.executable, "-m", "streamer.cli", "run", "apps.clickstream:topology",
                   "--bootstrap-servers", bootstrap, "--application-id", f"clickstream-demo-{os.getpid()}",
                   "--state-dir", state_dir, "--commit-interval-ms", "500", "--log-level", "WARNING"]
        print("$ " + " ".join(command[2:]), flush=True)
        worker = subprocess.Popen(command)
        try:
            got = asyncio.run(read_outputs(bootstrap, outputs, expected_min=args.events // 2, timeout=120))
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=60)
        print(f"\nworker stopped with SIGTERM, exit code {code}\n")
        print(f"{'output topic':<26}{'records':>9}   sample")
        for topic, messages in got.items():
            sample = orjson.loads(messages[0].value) if messages else "-"
            print(f"{topic:<26}{len(messages):>9}   {sample}")
        kept = sum(len(v) for v in got.values())
        hosts = Counter(orjson.loads(m.value)["host"] for v in got.values() for m in v)
        print(f"\n{args.events} events in, {kept} routed out, {args.events - kept} dropped (bots, malformed)")
        print(f"events per host after normalisation: {dict(hosts)}")
        return 0 if code == 0 and kept > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
