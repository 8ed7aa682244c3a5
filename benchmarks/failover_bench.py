"""Failover with and without a standby, and scale-out 1 -> 3 -> 1 under steady input.

    .venv/bin/python -m benchmarks.failover_bench [--records 200000] [--keys 50000]
                                                  [--session-timeout-ms 6000] [--rate 2000]

Runs ``streamer run tests.scale_app:build`` (a count per key, one stateful sub-topology)
as worker processes against the project's dev broker, at-least-once:

- failover: two workers, one task each (two partitions). Once the input is processed,
  one worker is killed with SIGKILL; printed are the records the survivor restored for
  the task it took over (``streamer_restore_records_total``) and the time from the kill
  to the first output of that task, against session timeout + 2 s. Once with
  ``num_standby_replicas=0``, once with 1.
- scale-out: input at a fixed rate while one worker runs, two more join, then leave
  (SIGTERM); printed are every worker's rebalance pauses (``streamer_rebalance_pause_seconds``)
  and whether the final counts are exact (no loss, no duplicates).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import time
import urllib.request
import uuid
from collections import Counter

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamer.devbroker import DevBroker
from streamer.partitioner import default_partition
from tests.kafka_helpers import end_offsets, produce
from tests.test_scale_broker import read_counts
from tests.workers import WorkerProcess, assigned_tasks

APP = "tests.scale_app:build"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int, name: str) -> float:
    """Sum of a metric's samples on a worker's /metrics (0 when it has none)."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


async def until(predicate, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"failover_bench: gave up waiting for {what} after {timeout:.0f}s")
        await asyncio.sleep(interval)


async def topics(bootstrap: str, partitions: int) -> tuple[str, str]:
    names = (f"fo-in-{uuid.uuid4().hex[:8]}", f"fo-out-{uuid.uuid4().hex[:8]}")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()
    return names


def worker(bootstrap: str, app_id: str, source: str, output: str, name: str, port: int, session_ms: int,
           standbys: int) -> WorkerProcess:
    return WorkerProcess(APP, bootstrap, app_id, app_settings={"input": source, "output": output}, name=name,
                         extra_args=["--metrics-port", str(port), "--set", f"session_timeout_ms={session_ms}",
                                     "--set", f"heartbeat_interval_ms={max(session_ms // 6, 500)}",
                                     "--set", f"num_standby_replicas={standbys}",
                                     # a worker that joins behind warms up first; look again soon
                                     "--set", "probing_rebalance_interval_ms=3000"])


async def first_output(bootstrap: str, tp: TopicPartition, start: int) -> float:
    """Wall-clock time at which a record at or after ``start`` appears on ``tp``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        while True:
            if (await consumer.getmany(tp, timeout_ms=100)).get(tp):
                return time.monotonic()
    finally:
        await consumer.stop()


async def failover(bootstrap: str, records: int, keys: int, session_ms: int, standbys: int) -> None:
    source, output = await topics(bootstrap, 2)
    app_id = f"fo-{uuid.uuid4().hex[:8]}"
    rows = [(f"k{n % keys}".encode(), b"x") for n in range(records)]
    await produce(bootstrap, source, rows)
    ports = [free_port(), free_port()]
    workers = [worker(bootstrap, app_id, source, output, f"w{i}", ports[i], session_ms, standbys).start()
               for i in range(2)]
    try:
        await until(lambda: all(len(assigned_tasks(w.log())) == 1 for w in workers), 180, "one task per worker")
        await until(lambda: sum(scrape(p, "streamer_records_consumed_total") for p in ports) >= records, 300,
                    "the input to be processed")
        if standbys:  # the standby reads what the last commit wrote to the changelog
            await asyncio.sleep(2 + 0.2)
        survivor, victim = workers
        moved = next(iter(assigned_tasks(victim.log())))
        partition = int(moved.split("_")[1])
        out_tp = TopicPartition(output, partition)
        start = (await end_offsets(bootstrap, output)).get(partition, 0)
        restored_before = scrape(ports[0], "streamer_restore_records_total")
        watcher = asyncio.ensure_future(first_output(bootstrap, out_tp, start))
        victim.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        killed = time.monotonic()
        probe = next(f"probe{n}" for n in range(10_000) if default_partition(f"probe{n}".encode(), 2) == partition)
        await produce(bootstrap, source, [(probe.encode(), b"x")])
        seen = await asyncio.wait_for(watcher, 120)
        restored = scrape(ports[0], "streamer_restore_records_total") - restored_before
        changelog = (await end_offsets(bootstrap, f"{app_id}-scale-counts-changelog")).get(partition, 0)
        print(f"failover, {standbys} standby: restored {restored:.0f} of {changelog} changelog records; "
              f"kill to first output of task {moved} {seen - killed:.2f}s (session timeout + 2 s = "
              f"{session_ms / 1000 + 2:.1f}s)")
        assert survivor.running, survivor.log()[-2000:]
    finally:
        for w in workers:
            w.kill()


async def scale_out(bootstrap: str, keys: int, rate: int, session_ms: int) -> None:
    source, output = await topics(bootstrap, 6)
    app_id = f"scale-{uuid.uuid4().hex[:8]}"
    sent = 0
    stop = asyncio.Event()

    async def steady() -> None:
        nonlocal sent
        while not stop.is_set():
            began = time.monotonic()
            batch = [(f"k{n % keys}".encode(), b"x") for n in range(sent, sent + rate // 10)]
            await produce(bootstrap, source, batch)
            sent += len(batch)
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - began)))

    ports = [free_port() for _ in range(3)]
    workers = [worker(bootstrap, app_id, source, output, f"s{i}", ports[i], session_ms, 0) for i in range(3)]
    producer = asyncio.ensure_future(steady())
    try:
        workers[0].start()
        await until(lambda: assigned_tasks(workers[0].log()), 120, "the first worker's tasks")
        await asyncio.sleep(5)
        workers[1].start()
        workers[2].start()
        await until(lambda: all(assigned_tasks(w.log()) for w in workers), 120, "three workers with tasks")
        await asyncio.sleep(5)
        pauses = {w.name: (scrape(p, "streamer_rebalance_pause_seconds_sum"),
                           scrape(p, "streamer_rebalance_pause_seconds_count")) for w, p in zip(workers, ports)}
        for w in workers[1:]:
            await w.stop(signal.SIGTERM)
        await until(lambda: len(assigned_tasks(workers[0].log())) == 6, 60, "the first worker to hold every task")
        await asyncio.sleep(3)
        stop.set()
        await producer
        await until(lambda: scrape(ports[0], "streamer_consumer_lag_records") == 0
                    and scrape(ports[0], "streamer_records_consumed_total") > 0, 120, "the input to be processed")
        await asyncio.sleep(1)
        first = (scrape(ports[0], "streamer_rebalance_pause_seconds_sum"),
                 scrape(ports[0], "streamer_rebalance_pause_seconds_count"))
        counts = await read_counts(bootstrap, output)
        expected = dict(Counter(f"k{n % keys}" for n in range(sent)))
        lost = sum(max(0, v - counts.get(k, 0)) for k, v in expected.items())
        extra = sum(max(0, counts.get(k, 0) - v) for k, v in expected.items())
        print(f"scale-out 1 -> 3 -> 1 at {rate} records/s, {sent} records: "
              f"counts {'exact' if counts == expected else f'off: {lost} lost, {extra} extra'}")
        for name, (total, count) in {**pauses, workers[0].name: first}.items():
            if count:
                print(f"  {name}: {count:.0f} rebalances, mean pause {total / count:.2f}s")
    finally:
        stop.set()
        for w in workers:
            w.kill()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--bootstrap", help="an existing broker instead of a fresh dev broker")
    args = parser.parse_args()
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = DevBroker()
        broker.start()
        bootstrap = broker.bootstrap_servers
    try:
        for standbys in (0, 1):
            await failover(bootstrap, args.records, args.keys, args.session_timeout_ms, standbys)
        await scale_out(bootstrap, args.keys, args.rate, args.session_timeout_ms)
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
