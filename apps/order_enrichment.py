"""Orders enriched with their customer, read from a table of customers at each order's time.

    customers (key: customer id, value: {"name", "tier", ...}; a tombstone deletes a customer)
      --> table "customers"
    orders (key: order id, value: {"customer_id", "amount", ...})
      --> re-keyed by customer id (through the repartition topic ``<app>-orders-by-customer-repartition``,
          partitioned like the customers topic)
      --> left join with the customers table
      --> orders-enriched (key: customer id; the order with "customer": {"name", "tier"})
      --> orders-unmatched (orders whose customer is unknown at their time, or that name none)

Each order sees the customer row as of its own timestamp: the task reads both topics in
timestamp order (``max_task_idle_ms`` lets it wait for a customers partition that is
behind). A customer update changes the orders after it, never the ones before, and
produces no output itself. Topic names come from app settings ``customers``, ``orders``,
``enriched`` and ``unmatched``. Run it with ``streamer run apps.order_enrichment:topology``.
"""

from __future__ import annotations

from typing import Any

from streamer import StreamsBuilder, app_setting

STORE = "customers"


def customer_of(_order_id: Any, order: dict[str, Any]) -> str | None:
    """The customer an order belongs to; None (a null key: joined with no customer) if it names none."""
    customer = order.get("customer_id")
    return str(customer) if customer not in (None, "") else None


def enrich(order: dict[str, Any], customer: dict[str, Any] | None) -> dict[str, Any]:
    """The order with the customer's name and tier (None for an unknown customer)."""
    if customer is None:
        return {**order, "customer": None}
    return {**order, "customer": {"name": customer.get("name"), "tier": customer.get("tier", "standard")}}


def build() -> StreamsBuilder:
    builder = StreamsBuilder()
    customers = builder.table(app_setting("customers", "customers"), key_serde="str", value_serde="json", name=STORE)
    orders = builder.stream(app_setting("orders", "orders"), key_serde="str", value_serde="json", name="orders")
    by_customer = orders.select_key(customer_of, name="by-customer")
    enriched = by_customer.left_join(customers, enrich, name="orders-by-customer")
    routes = (enriched.split(name="matched")
              .branch(lambda _k, order: order["customer"] is not None, name="known")
              .default_branch("unknown"))
    routes["known"].to(app_setting("enriched", "orders-enriched"), key_serde="str", value_serde="json")
    routes["unknown"].to(app_setting("unmatched", "orders-unmatched"), key_serde="str", value_serde="json")
    return builder


topology = build().build()
