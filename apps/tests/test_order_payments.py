"""The order payments app in the test driver: orders matched with payments within 10 minutes, alerts for the rest."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from apps.order_payments import topology
from streamer.testing import TopologyTestDriver

ORDERS, PAYMENTS, PAID, ALERTS = "orders", "payments", "paid-orders", "unpaid-order-alerts"
MINUTE = 60_000


@pytest.fixture
def driver() -> Iterator[TopologyTestDriver]:
    with TopologyTestDriver(topology, application_id="order-payments") as driver:
        yield driver


def order(n: int, amount: int = 10) -> dict[str, Any]:
    return {"order_id": n, "amount": amount}


def payment(n: int, amount: int = 10) -> dict[str, Any]:
    return {"order_id": n, "amount": amount, "method": "card"}


def records(driver: TopologyTestDriver, topic: str) -> list[tuple[Any, Any, int]]:
    return [(r.key, r.value, r.timestamp) for r in driver.read_records(topic)]


def test_a_payment_within_10_minutes_matches_its_order(driver: TopologyTestDriver) -> None:
    driver.pipe(ORDERS, "customer-1", order(1), timestamp=0)
    driver.pipe(PAYMENTS, "pay-9", payment(1), timestamp=10 * MINUTE)  # the window's last moment
    assert records(driver, PAID) == [("1", {"order": order(1), "payment": payment(1)}, 10 * MINUTE)]


def test_payments_before_the_order_or_too_late_do_not_match(driver: TopologyTestDriver) -> None:
    driver.pipe(PAYMENTS, "pay-1", payment(2), timestamp=MINUTE - 1)
    driver.pipe(ORDERS, "customer-1", order(2), timestamp=MINUTE)
    driver.pipe(PAYMENTS, "pay-2", payment(2), timestamp=11 * MINUTE + 1)
    assert records(driver, PAID) == []


def test_an_unpaid_order_alerts_once_its_window_and_grace_passed(driver: TopologyTestDriver) -> None:
    driver.pipe(ORDERS, "customer-1", order(3), timestamp=0)
    driver.pipe(ORDERS, "customer-2", order(4), timestamp=5 * MINUTE)
    driver.pipe(ORDERS, "customer-3", order(5), timestamp=11 * MINUTE)  # 0 + 10 + 1 minutes: not yet closed
    assert records(driver, ALERTS) == []
    driver.pipe(ORDERS, "customer-3", order(6), timestamp=11 * MINUTE + 1)
    assert records(driver, ALERTS) == [("3", {"order": order(3), "payment": None}, 0)]
    driver.pipe(PAYMENTS, "pay-1", payment(4), timestamp=12 * MINUTE)
    driver.pipe(ORDERS, "customer-4", order(7), timestamp=40 * MINUTE)
    assert [key for key, _, _ in records(driver, PAID)] == ["4"]
    assert [key for key, _, _ in records(driver, ALERTS)] == ["5", "6"]


def test_a_late_payment_within_grace_still_matches_and_no_alert_follows(driver: TopologyTestDriver) -> None:
    driver.pipe(ORDERS, "customer-1", order(7), timestamp=0)
    driver.pipe(ORDERS, "customer-2", order(8), timestamp=10 * MINUTE + 30_000)  # stream time moves past 10 min
    driver.pipe(PAYMENTS, "pay-1", payment(7), timestamp=9 * MINUTE)  # out of order, within grace
    driver.pipe(ORDERS, "customer-3", order(9), timestamp=30 * MINUTE)
    assert [key for key, _, _ in records(driver, PAID)] == ["7"]
    assert [key for key, _, _ in records(driver, ALERTS)] == ["8"]


def test_partial_payments_each_match_and_orders_are_re_keyed_by_order_id(driver: TopologyTestDriver) -> None:
    driver.pipe(ORDERS, "customer-1", order(10, 30), timestamp=0)
    driver.pipe_many(PAYMENTS, [("pay-1", payment(10, 10), MINUTE), ("pay-2", payment(10, 20), 2 * MINUTE)])
    assert [(key, value["payment"]["amount"], ts) for key, value, ts in records(driver, PAID)] == [
        ("10", 10, MINUTE), ("10", 20, 2 * MINUTE)]
    assert {t.suffix for t in topology.repartition_topics} == {
        "order-payments-left-repartition", "order-payments-right-repartition"}


def test_an_order_without_id_alerts_at_once_and_a_payment_without_one_is_dropped(driver: TopologyTestDriver) -> None:
    driver.pipe(ORDERS, "customer-1", {"amount": 5}, timestamp=0)
    driver.pipe(PAYMENTS, "pay-1", {"amount": 5}, timestamp=0)
    assert records(driver, ALERTS) == [(None, {"order": {"amount": 5}, "payment": None}, 0)]
    assert driver.dropped == {"order-payments": 1}
