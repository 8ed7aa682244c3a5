"""Stream-table and table-table joins against the real broker, under exactly-once: orders enriched with
their customer (a re-keyed stream joining a table), customer profiles (customers left-joined with
credit limits) and limits summed per tier (a regrouped reduce with subtractor). One worker, then a
second joins (a rebalance while records flow), then the first leaves (its tasks and stores move over
from their changelogs). Every order comes out once, with the customer version it should have seen."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from apps.order_enrichment import customer_of, enrich
from streamer import StreamsBuilder
from tests.workers import InProcessWorker
from tests.kafka_helpers import consume_all, wait_for

pytestmark = pytest.mark.broker

BASE = 1_700_000_000_000
PARTITIONS = 3
Rows = list[tuple[str, Any, int]]


def _topology(topics: dict[str, str]) -> Any:
    builder = StreamsBuilder()
    customers = builder.table(topics["customers"], key_serde="str", value_serde="json", name="customers")
    credit = builder.table(topics["credit"], key_serde="str", value_serde="json", name="credit")
    orders = builder.stream(topics["orders"], key_serde="str", value_serde="json")
    orders.select_key(customer_of).left_join(customers, enrich, name="enrich").to(topics["enriched"])
    profiles = customers.left_join(credit, lambda c, cr: {**c, "limit": None if cr is None else cr["limit"]})
    profiles.to_stream().to(topics["profiles"], value_serde="json")
    (profiles.group_by(lambda k, p: (p["tier"], p["limit"] or 0), key_serde="str", value_serde="json")
     .reduce(lambda a, b: a + b, lambda a, b: a - b, "limit-by-tier").to_stream().to(topics["totals"]))
    return builder.build()


async def _produce(bootstrap: str, topic: str, rows: Rows) -> None:
    """JSON records (None: a tombstone) with their own timestamps, all acknowledged before returning."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [await producer.send(topic, None if value is None else orjson.dumps(value), key=key.encode(),
                                    timestamp_ms=ts) for key, value, ts in rows]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


class _Model:
    """What the topology must write, from the inputs in the order the test makes them processed."""

    def __init__(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.credit: dict[str, dict[str, Any]] = {}
        self.profile_updates = 0
        self.seen: dict[int, Any] = {}  # order number -> the customer it should be enriched with

    def customer(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.profile_updates += key in self.customers  # a delete of a known row: one delete out
            self.customers.pop(key, None)
        else:
            self.customers[key] = value
            self.profile_updates += 1

    def limit(self, key: str, value: dict[str, Any] | None) -> None:
        self.profile_updates += key in self.customers and (value is not None or key in self.credit)
        if value is None:
            self.credit.pop(key, None)
        else:
            self.credit[key] = value

    def order(self, n: int, customer: str) -> None:
        row = self.customers.get(customer)
        self.seen[n] = None if row is None else {"name": row["name"], "tier": row.get("tier", "standard")}

    def totals(self) -> dict[str, int]:
        sums: dict[str, int] = {}
        for key, row in self.customers.items():
            sums[row["tier"]] = sums.get(row["tier"], 0) + self.credit.get(key, {}).get("limit", 0)
        return sums


async def test_stream_table_and_table_table_joins_across_a_rebalance_exactly_once(
        kafka_bootstrap: str, new_topic: Any, tmp_path: Path) -> None:
    names = ("customers", "credit", "orders", "enriched", "profiles", "totals")
    topics = {name: await new_topic(f"tj-{name}", partitions=PARTITIONS) for name in names}
    topology = _topology(topics)
    app_id = f"tj-{uuid.uuid4().hex[:8]}"
    model = _Model()
    clock = iter(range(BASE, BASE + 10_000_000, 10))

    async def customers(rows: list[tuple[str, dict[str, Any] | None]]) -> None:
        for key, value in rows:
            model.customer(key, value)
        await _produce(kafka_bootstrap, topics["customers"], [(k, v, next(clock)) for k, v in rows])

    async def limits(rows: list[tuple[str, dict[str, Any] | None]]) -> None:
        for key, value in rows:
            model.limit(key, value)
        await _produce(kafka_bootstrap, topics["credit"], [(k, v, next(clock)) for k, v in rows])

    async def table_updates_processed() -> None:
        """Profiles are written in the transaction that stores the table updates: once they are all out,
        every order produced after them meets the new rows."""
        await consume_all(kafka_bootstrap, topics["profiles"], model.profile_updates, timeout=120)

    async def orders(numbers: range) -> None:
        rows = [(f"o{n}", {"n": n, "customer_id": f"c{n % 12}"}, next(clock)) for n in numbers]
        for n in numbers:
            model.order(n, f"c{n % 12}")
        await _produce(kafka_bootstrap, topics["orders"], rows)

    async def orders_processed() -> None:
        """Orders go through a repartition topic: a table update produced before they are out could
        overtake them (the join's task does not wait for a partition that is empty)."""
        await consume_all(kafka_bootstrap, topics["enriched"], len(model.seen), timeout=120)

    first = InProcessWorker(topology, app_id, kafka_bootstrap, tmp_path / "a")
    second: InProcessWorker | None = None
    try:
        await first.started()
        await customers([(f"c{i}", {"name": f"n{i}", "tier": ("gold", "silver")[i % 2], "v": 1})
                         for i in range(10)])
        await limits([(f"c{i}", {"limit": 100 * i}) for i in range(8)])
        await table_updates_processed()
        await orders(range(0, 30))
        await orders_processed()

        second = InProcessWorker(topology, app_id, kafka_bootstrap, tmp_path / "b")  # a rebalance starts
        await customers([(f"c{i}", {"name": f"n{i}", "tier": "platinum", "v": 2}) for i in range(5)]
                        + [("c9", None), ("c77", None)])
        await limits([("c5", None), ("c8", {"limit": 5}), ("c20", {"limit": 1})])
        await table_updates_processed()
        await orders(range(30, 60))  # while the group rebalances
        await second.started()
        await wait_for(lambda: first.worker.tasks and second.worker.tasks, timeout=60,
                       message="both workers to hold tasks")
        await orders_processed()

        await first.stop()  # its tasks move to the second worker, stores restored from the changelogs
        await customers([("c1", {"name": "n1", "tier": "gold", "v": 3}), ("c10", {"name": "n10", "tier": "gold"})])
        await table_updates_processed()
        await orders(range(60, 90))

        out = await consume_all(kafka_bootstrap, topics["enriched"], 90, timeout=120)
        enriched = [orjson.loads(r.value) for r in out]
        assert sorted(e["n"] for e in enriched) == list(range(90))  # each order exactly once
        assert {e["n"]: e["customer"] for e in enriched} == model.seen

        profiles = await consume_all(kafka_bootstrap, topics["profiles"], model.profile_updates, timeout=60)
        assert len(profiles) == model.profile_updates
        latest = {r.key.decode(): None if r.value is None else orjson.loads(r.value) for r in profiles}
        assert {k: v for k, v in latest.items() if v is not None} == {
            key: {**row, "limit": model.credit.get(key, {}).get("limit")} for key, row in model.customers.items()}

        totals = await consume_all(kafka_bootstrap, topics["totals"], 1, timeout=60)
        last = {r.key.decode(): orjson.loads(r.value) for r in totals}
        assert {tier: total for tier, total in last.items() if total} == {
            tier: total for tier, total in model.totals().items() if total}
    finally:
        await asyncio.gather(first.stop(), *(() if second is None else (second.stop(),)), return_exceptions=True)
