"""The end-to-end demo: a local Kafka broker, the clickstream app, data, and what came out.

    ./scripts/demo            (sets everything up, then runs: python -m apps.demo)

Starts the project's dev broker (unless --bootstrap-servers is given), creates the
topics, writes synthetic clickstream events, runs a `streamer run` worker on
apps.clickstream:topology, waits until the worker has committed the whole input, reads
what it routed to each output topic, prints a summary with samples, then stops the
worker with SIGTERM and the broker.
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
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from apps import clickstream
from apps.clickstream_generator import generate

PARTITIONS = 4
#: Seed of the generated events, so a run's outputs can be predicted.
SEED = 7


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


async def wait_until_consumed(bootstrap: str, group: str, topic: str, timeout: float) -> None:
    """Wait until ``group`` committed offsets at the end of every partition of ``topic``.

    The worker flushes its outputs before it commits, so from then on every output is in place.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while True:
            try:
                committed = await admin.list_consumer_group_offsets(group)
            except KafkaError as error:  # a new broker has no group coordinator for a moment
                if not error.retriable:
                    raise
                committed = {}
            behind = {tp: end - committed[tp].offset if tp in committed else end for tp, end in ends.items()}
            if not any(lag > 0 for lag in behind.values()):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker did not consume {topic} within {timeout:.0f}s; still behind: {behind}")
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
        await admin.close()


async def read_outputs(bootstrap: str, topics: list[str]) -> dict[str, list]:
    """Everything in ``topics``, up to their end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    got: dict[str, list] = {t: [] for t in topics}
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp, end in ends.items() if end > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, messages in batches.items():
                got[tp.topic].extend(m for m in messages if m.offset < ends[tp])
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
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
        asyncio.run(generate(bootstrap, source, args.events, seed=SEED))
        state_dir = tempfile.mkdtemp(prefix="streamer-demo-")
        application_id = f"clickstream-demo-{os.getpid()}"
        command = [sys.executable, "-m", "streamer.cli", "run", "apps.clickstream:topology",
                   "--bootstrap-servers", bootstrap, "--application-id", application_id,
                   "--state-dir", state_dir, "--commit-interval-ms", "500", "--log-level", "WARNING"]
        print("$ " + " ".join(command[2:]), flush=True)
        worker = subprocess.Popen(command)
        try:
            asyncio.run(wait_until_consumed(bootstrap, application_id, source, timeout=120))
            got = asyncio.run(read_outputs(bootstrap, outputs))
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
