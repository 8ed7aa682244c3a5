"""The order payments app (a left stream-stream join of two re-keyed streams) against the real broker,
under exactly-once: one worker, a second joins (rebalance), the first leaves (its tasks, join stores and
outer store move over from their changelogs); every paid order comes out once, every unpaid one alerts once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from apps.order_payments import build
from streamer.partitioner import default_partition
from tests.workers import InProcessWorker
from tests.kafka_helpers import consume_all

pytestmark = pytest.mark.broker

MINUTE = 60_000
BASE = 1_700_000_000_000
PARTITIONS = 3
Rows = list[tuple[str, dict[str, Any], int]]


async def _produce(bootstrap: str, topic: str, rows: Rows) -> None:
    """Records (key, JSON value, timestamp) with their own timestamps: the join's time is event time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [await producer.send(topic, orjson.dumps(value), key=key.encode(), timestamp_ms=ts)
                for key, value, ts in rows]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _phase(first: int, last: int) -> tuple[Rows, Rows]:
    """Orders first..last-1, a second apart; the even ones paid 2 minutes later, the odd ones never."""
    orders = [(f"c{n % 5}", {"order_id": n, "amount": n}, BASE + n * 1000) for n in range(first, last)]
    payments = [(f"p{n}", {"order_id": n, "amount": n}, BASE + n * 1000 + 2 * MINUTE)
                for n in range(first, last) if n % 2 == 0]
    return orders, payments


async def _order_ids(bootstrap: str, topic: str, count: int) -> list[int]:
    records = await consume_all(bootstrap, topic, count, timeout=120)
    return sorted(orjson.loads(r.value)["order"]["order_id"] for r in records)


async def test_order_payments_join_across_a_rebalance_exactly_once(kafka_bootstrap: str, new_topic: Any,
                                                                    tmp_path: Path, monkeypatch: Any) -> None:
    topics = {name: await new_topic(f"ssj-{name}", partitions=PARTITIONS)
              for name in ("orders", "payments", "paid", "alerts")}
    for name, topic in topics.items():
        monkeypatch.setenv(f"STREAMER_APP_{name.upper()}", topic)
    app_id = f"ssj-{uuid.uuid4().hex[:8]}"
    first = InProcessWorker(build().build(), app_id, kafka_bootstrap, tmp_path / "a")
    second: InProcessWorker | None = None
    try:
        await first.started()
        orders, payments = _phase(0, 40)
        await _produce(kafka_bootstrap, topics["orders"], orders)
        await _produce(kafka_bootstrap, topics["payments"], payments)
        assert await _order_ids(kafka_bootstrap, topics["paid"], 20) == list(range(0, 40, 2))

        # a rebalance: tasks move to the second worker
        second = InProcessWorker(build().build(), app_id, kafka_bootstrap, tmp_path / "b")
        await second.started()
        orders, payments = _phase(40, 80)
        await _produce(kafka_bootstrap, topics["orders"], orders)
        await _produce(kafka_bootstrap, topics["payments"], payments)
        assert await _order_ids(kafka_bootstrap, topics["paid"], 40) == list(range(0, 80, 2))

        await first.stop()  # another: the second worker takes every task, restoring its stores
        # One late order per repartition partition, an hour on: every unpaid order's window closes.
        chosen = {default_partition(str(n).encode(), PARTITIONS): n for n in range(1000, 1100)}
        assert len(chosen) == PARTITIONS
        await _produce(kafka_bootstrap, topics["orders"],
                       [("tick", {"order_id": n, "amount": 0}, BASE + 60 * MINUTE) for n in chosen.values()])
        assert await _order_ids(kafka_bootstrap, topics["alerts"], 40) == list(range(1, 80, 2))
        assert await _order_ids(kafka_bootstrap, topics["paid"], 40) == list(range(0, 80, 2))
    finally:
        await asyncio.gather(first.stop(), *(() if second is None else (second.stop(),)), return_exceptions=True)
