"""The order enrichment app in the test driver: orders joined with the customer row of their time."""

from __future__ import annotations

from typing import Iterator

import pytest

from apps.order_enrichment import STORE, topology
from streamer.testing import TopologyTestDriver

CUSTOMERS, ORDERS, ENRICHED, UNMATCHED = "customers", "orders", "orders-enriched", "orders-unmatched"


@pytest.fixture
def driver() -> Iterator[TopologyTestDriver]:
    with TopologyTestDriver(topology, application_id="order-enrichment") as driver:
        driver.pipe(CUSTOMERS, "c1", {"name": "Ann", "tier": "gold"}, timestamp=1)
        driver.pipe(CUSTOMERS, "c2", {"name": "Bob"}, timestamp=2)
        yield driver


def test_orders_are_keyed_by_customer_and_get_its_name_and_tier(driver: TopologyTestDriver) -> None:
    driver.pipe(ORDERS, "o1", {"customer_id": "c1", "amount": 30}, timestamp=10)
    driver.pipe(ORDERS, "o2", {"customer_id": "c2", "amount": 5}, timestamp=11)
    assert [(r.key, r.value, r.timestamp) for r in driver.read_records(ENRICHED)] == [
        ("c1", {"customer_id": "c1", "amount": 30, "customer": {"name": "Ann", "tier": "gold"}}, 10),
        ("c2", {"customer_id": "c2", "amount": 5, "customer": {"name": "Bob", "tier": "standard"}}, 11),
    ]
    assert driver.read_output(UNMATCHED) == []


def test_customer_changes_apply_to_later_orders_only_and_emit_nothing(driver: TopologyTestDriver) -> None:
    driver.pipe(ORDERS, "o1", {"customer_id": "c1", "amount": 1}, timestamp=10)
    driver.pipe(CUSTOMERS, "c1", {"name": "Ann", "tier": "platinum"}, timestamp=11)
    driver.pipe(CUSTOMERS, "c2", None, timestamp=12)
    assert driver.read_output(ENRICHED) == [("c1", {"customer_id": "c1", "amount": 1,
                                                    "customer": {"name": "Ann", "tier": "gold"}})]
    driver.pipe(ORDERS, "o2", {"customer_id": "c1", "amount": 2}, timestamp=13)
    driver.pipe(ORDERS, "o3", {"customer_id": "c2", "amount": 3}, timestamp=14)
    assert [v["customer"]["tier"] for _, v in driver.read_output(ENRICHED)] == ["platinum"]
    assert driver.read_output(UNMATCHED) == [("c2", {"customer_id": "c2", "amount": 3, "customer": None})]
    assert driver.store(STORE).all() == {"c1": {"name": "Ann", "tier": "platinum"}}


def test_orders_without_a_known_customer_go_to_unmatched(driver: TopologyTestDriver) -> None:
    driver.pipe_many(ORDERS, [("o1", {"customer_id": "c9"}), ("o2", {"amount": 4}), ("o3", {"customer_id": ""})])
    assert driver.read_output(UNMATCHED) == [("c9", {"customer_id": "c9", "customer": None}),
                                             (None, {"amount": 4, "customer": None}),
                                             (None, {"customer_id": "", "customer": None})]
    assert driver.read_output(ENRICHED) == []


def test_orders_go_through_one_repartition_topic_partitioned_like_customers() -> None:
    [spec] = topology.repartition_topics
    assert spec.suffix == "orders-by-customer-repartition" and spec.follows_reader
    assert [s.name for s in topology.stores()] == [STORE]
