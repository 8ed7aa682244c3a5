"""Orders matched with their payments within 10 minutes, and an alert for orders left unpaid.

    orders   (key: any, e.g. a customer id; value: {"order_id": ..., "amount": ..., ...})
    payments (key: any, e.g. a payment id;  value: {"order_id": ..., "amount": ..., ...})
      --> both re-keyed by "order_id" (repartition topics, so both sides are partitioned alike)
      --> left join: a payment matches an order when it comes 0 to 10 minutes after it
          (JoinWindows of 10 minutes with before(0), grace 1 minute for late records)
      --> paid-orders (key: order id; {"order": ..., "payment": ...}, one per matching payment,
          timestamped with the payment)
      --> unpaid-order-alerts (key: order id; {"order": ..., "payment": None}) for an order no
          payment matched, once its window closed: when stream time passes order time +
          10 minutes + grace. Never for an order that is paid in time, even late.

Records without an order id are dropped by the re-keying's join (a null key: orders with
none get an alert at once, payments with none are dropped). Topic names come from app
settings ``orders``, ``payments``, ``paid`` and ``alerts``. Run it with
``streamer run apps.order_payments:topology``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from streamer import JoinWindows, StreamsBuilder, app_setting

WINDOW = timedelta(minutes=10)
GRACE = timedelta(minutes=1)
#: A payment joins an order it follows by 0 to 10 minutes.
WINDOWS = JoinWindows.of_time_difference_and_grace(WINDOW, GRACE).before(0)


def order_id(_key: Any, value: dict[str, Any]) -> str | None:
    """The join key: the record's order id as text, None when it has none."""
    found = value.get("order_id") if isinstance(value, dict) else None
    return None if found is None else str(found)


def matched(order: dict[str, Any], payment: dict[str, Any] | None) -> dict[str, Any]:
    return {"order": order, "payment": payment}


def build() -> StreamsBuilder:
    builder = StreamsBuilder()
    orders = builder.stream(app_setting("orders", "orders"), key_serde="str", value_serde="json", name="orders")
    payments = builder.stream(app_setting("payments", "payments"), key_serde="str", value_serde="json",
                              name="payments")
    results = (orders.select_key(order_id, name="orders-by-id")
               .left_join(payments.select_key(order_id, name="payments-by-id"), matched, WINDOWS,
                          name="order-payments"))
    branches = (results.split(name="paid-or-not")
                .branch(lambda _k, v: v["payment"] is None, name="unpaid")
                .default_branch("paid"))
    branches["paid"].to(app_setting("paid", "paid-orders"), key_serde="str", value_serde="json")
    branches["unpaid"].to(app_setting("alerts", "unpaid-order-alerts"), key_serde="str", value_serde="json")
    return builder


topology = build().build()
