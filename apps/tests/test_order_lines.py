"""The order-lines app in the test driver: lines priced by the product their id names."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from apps.order_lines import topology
from streamer.testing import TopologyTestDriver

LINES, PRODUCTS, OUT = "order-lines", "products", "priced-order-lines"


def line(order: str, product: str | None, quantity: int) -> dict[str, Any]:
    return {"order_id": order, "product_id": product, "quantity": quantity}


def product(name: str, price: int) -> dict[str, Any]:
    return {"name": name, "price_cents": price}


@pytest.fixture
def driver() -> Iterator[TopologyTestDriver]:
    with TopologyTestDriver(topology, application_id="order-lines") as driver:
        yield driver


def test_lines_are_priced_and_repriced_with_their_product(driver: TopologyTestDriver) -> None:
    driver.pipe(PRODUCTS, "apple", product("Apple", 50), 1)
    driver.pipe(LINES, "o1-1", line("o1", "apple", 3), 2)
    driver.pipe(LINES, "o2-1", line("o2", "apple", 1), 3)
    driver.pipe(PRODUCTS, "apple", product("Apple", 60), 4)
    assert [(k, v["total_cents"]) for k, v in driver.read_output(OUT)] == [
        ("o1-1", 150), ("o2-1", 50), ("o1-1", 180), ("o2-1", 60)]
    assert driver.store("priced-lines").get("o1-1")["name"] == "Apple"


def test_unknown_products_and_lines_without_one_stay_unpriced(driver: TopologyTestDriver) -> None:
    driver.pipe(LINES, "o1-1", line("o1", "pear", 2), 1)
    driver.pipe(LINES, "o1-2", line("o1", None, 1), 2)
    assert driver.read_latest(OUT) == {"o1-1": {**line("o1", "pear", 2), "name": None, "total_cents": None},
                                       "o1-2": {**line("o1", None, 1), "name": None, "total_cents": None}}
    driver.pipe(PRODUCTS, "pear", product("Pear", 70), 3)
    assert driver.read_output(OUT) == [("o1-1", {**line("o1", "pear", 2), "name": "Pear", "total_cents": 140})]


def test_a_line_changing_product_and_deletes(driver: TopologyTestDriver) -> None:
    driver.pipe(PRODUCTS, "apple", product("Apple", 50), 1)
    driver.pipe(PRODUCTS, "pear", product("Pear", 70), 2)
    driver.pipe(LINES, "o1-1", line("o1", "apple", 1), 3)
    driver.pipe(LINES, "o1-1", line("o1", "pear", 1), 4)
    driver.pipe(PRODUCTS, "apple", product("Apple", 55), 5)  # the line left apple: not repriced
    assert [v["total_cents"] for _, v in driver.read_output(OUT)] == [50, 70]
    driver.pipe(PRODUCTS, "pear", None, 6)  # the product goes: the line stays, unpriced
    driver.pipe(LINES, "o1-1", None, 7)  # the line goes
    assert driver.read_output(OUT) == [("o1-1", {**line("o1", "pear", 1), "name": None, "total_cents": None}),
                                       ("o1-1", None)]
