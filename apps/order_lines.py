"""Order lines priced from the product catalog: a foreign-key table join.

    order-lines (key: line id, value: {"order_id": ..., "product_id": ..., "quantity": n}; null deletes)
    products    (key: product id, value: {"name": ..., "price_cents": n}; null deletes)
      --> each line joined to the product its "product_id" names (a left join: a line whose product
          is unknown, or has no product id, stays, with "name" and "total_cents" null)
      --> priced-order-lines (key: line id, value: the line with "name" and "total_cents"; null: the
          line was deleted)

The two topics need not be co-partitioned, nor keyed alike: the join subscribes each line to its
product through an internal topic. A product's price change reprices every line that names it; a
line that changes product moves to the new one. Topic names come from app settings ``lines``,
``products`` and ``output``. Run it with ``streamer run apps.order_lines:topology``.
"""

from __future__ import annotations

from typing import Any

from streamer import StreamsBuilder, app_setting


def product_of(line: dict[str, Any]) -> Any:
    """The foreign key: the product a line names (None: none, so it joins nothing)."""
    return line.get("product_id")


def priced(line: dict[str, Any], product: dict[str, Any] | None) -> dict[str, Any]:
    """The line with its product's name and the line total; both None without a product."""
    if product is None:
        return {**line, "name": None, "total_cents": None}
    return {**line, "name": product["name"], "total_cents": product["price_cents"] * line["quantity"]}


def build() -> StreamsBuilder:
    builder = StreamsBuilder()
    lines = builder.table(app_setting("lines", "order-lines"), key_serde="str", value_serde="json", name="lines")
    products = builder.table(app_setting("products", "products"), key_serde="str", value_serde="json",
                             name="products")
    (
        lines.left_join(products, priced, foreign_key_extractor=product_of, name="priced-lines")
        .to_stream(name="priced-line-updates")
        .to(app_setting("output", "priced-order-lines"), key_serde="str", value_serde="json", name="to-output")
    )
    return builder


topology = build().build()
