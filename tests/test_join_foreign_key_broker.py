"""The foreign-key join against the real broker: the order-lines app under exactly-once, with two
workers and a rebalance in the middle; the final table is exact and the internal topics are
partitioned like the table each one is joined with."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.order_lines import build, priced
from tests.workers import InProcessWorker
from tests.kafka_helpers import consume_all, end_offsets, produce, wait_for

pytestmark = pytest.mark.broker


def _line(n: int, product: int | None, quantity: int) -> dict[str, Any]:
    return {"order_id": f"o{n // 3}", "product_id": None if product is None else f"p{product}", "quantity": quantity}


def _product(n: int, price: int) -> dict[str, Any]:
    return {"name": f"product {n}", "price_cents": price}


def _row(key: str, value: dict[str, Any] | None) -> tuple[bytes, bytes | None]:
    return key.encode(), None if value is None else orjson.dumps(value)


async def _final_table(bootstrap: str, topic: str) -> dict[str, Any]:
    """The output's last value per key (committed records only); a tombstone removes the key."""
    table: dict[str, Any] = {}
    for record in await consume_all(bootstrap, topic, 0, timeout=30):
        key = record.key.decode()
        if record.value is None:
            table.pop(key, None)
        else:
            table[key] = orjson.loads(record.value)
    return table


async def test_foreign_key_join_with_two_workers_and_a_rebalance(kafka_bootstrap: str, new_topic: Any,
                                                                 tmp_path: Path, monkeypatch: Any) -> None:
    lines = await new_topic("fk-lines", partitions=3)
    products = await new_topic("fk-products", partitions=2)  # not co-partitioned with the lines: no need
    output = await new_topic("fk-priced", partitions=3)
    for name, topic in (("LINES", lines), ("PRODUCTS", products), ("OUTPUT", output)):
        monkeypatch.setenv(f"STREAMER_APP_{name}", topic)
    app_id = f"fk-{uuid.uuid4().hex[:8]}"
    expected_lines: dict[str, dict[str, Any] | None] = {}
    expected_products: dict[str, dict[str, Any] | None] = {}

    async def send(topic: str, rows: dict[str, dict[str, Any] | None], into: dict[str, Any]) -> None:
        await produce(kafka_bootstrap, topic, [_row(k, v) for k, v in rows.items()])
        into.update(rows)

    await send(products, {f"p{n}": _product(n, 100 + n) for n in range(10)}, expected_products)
    await send(lines, {f"l{n}": _line(n, n % 12, 1 + n % 4) for n in range(60)}, expected_lines)  # p10, p11 unknown
    first = InProcessWorker(build().build(), app_id, kafka_bootstrap, tmp_path / "a")
    second: InProcessWorker | None = None
    try:
        await first.started()
        await wait_for(lambda: _count_is(kafka_bootstrap, output, 60), timeout=90, message="every line priced")

        # A second worker joins while lines change products, prices change and rows go on both sides.
        second = InProcessWorker(build().build(), app_id, kafka_bootstrap, tmp_path / "b")
        await send(lines, {f"l{n}": _line(n, (n + 5) % 12, 2) for n in range(0, 60, 4)}, expected_lines)
        await send(products, {f"p{n}": _product(n, 200 + n) for n in range(0, 12, 3)}, expected_products)
        await second.started()
        await send(lines, {f"l{n}": None for n in range(1, 60, 10)}, expected_lines)
        await send(lines, {f"l{n}": _line(n, None, 1) for n in range(2, 60, 15)}, expected_lines)
        await send(products, {"p1": None, "p4": None, "p10": _product(10, 999)}, expected_products)

        def priced_line(value: dict[str, Any]) -> dict[str, Any]:
            product = value["product_id"]
            return priced(value, None if product is None else expected_products.get(product))

        expected = {k: priced_line(v) for k, v in expected_lines.items() if v is not None}
        await wait_for(lambda: _table_is(kafka_bootstrap, output, expected), timeout=120,
                       message="the final priced lines")

        registration = await end_offsets(kafka_bootstrap, f"{app_id}-priced-lines-subscription-registration-topic")
        response = await end_offsets(kafka_bootstrap, f"{app_id}-priced-lines-subscription-response-topic")
        assert (len(registration), len(response)) == (2, 3)  # as the products, as the lines
    finally:
        await asyncio.gather(first.stop(), *([second.stop()] if second else []), return_exceptions=True)


async def _count_is(bootstrap: str, topic: str, count: int) -> bool:
    return len(await _final_table(bootstrap, topic)) == count


async def _table_is(bootstrap: str, topic: str, expected: dict[str, Any]) -> bool:
    return await _final_table(bootstrap, topic) == expected
