"""Foreign-key table joins in the test driver: matches, foreign key changes, deletes on both sides,
None extractor results, stale responses, derived inputs, stores and the wire formats."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from streamer import StreamsBuilder
from streamer.errors import DeserializationError, TopologyError
from streamer.processors.foreign_key_join import (
    Instruction,
    Response,
    ResponseSerde,
    Subscription,
    SubscriptionSerde,
    combined_key,
    primary_key_of,
    value_hash,
)
from streamer.serde import resolve_serde
from streamer.testing import TopologyTestDriver


def _product(line: dict[str, Any]) -> Any:
    return line.get("product")


def _joined(line: dict[str, Any], product: Any) -> dict[str, Any]:
    return {"qty": line["qty"], "name": None if product is None else product["name"]}


def _driver(kind: str = "join", *, name: str | None = None,
            derive: Callable[[Any, Any], tuple[Any, Any]] | None = None) -> TopologyTestDriver:
    builder = StreamsBuilder()
    lines = builder.table("lines", key_serde="str", value_serde="json")
    products = builder.table("products", key_serde="str", value_serde="json")
    if derive is not None:
        lines, products = derive(lines, products)
    joined = getattr(lines, kind)(products, _joined, foreign_key_extractor=_product, name=name)
    joined.to_stream().to("out", key_serde="str", value_serde="json")
    return TopologyTestDriver(builder.build())


def _line(product: str | None, qty: int) -> dict[str, Any]:
    return {"product": product, "qty": qty}


def test_inner_join_matches_waits_for_the_right_row_and_follows_its_updates() -> None:
    with _driver() as driver:
        driver.pipe("products", "p1", {"name": "apple"}, 1)
        driver.pipe("lines", "l1", _line("p1", 2), 5)
        driver.pipe("lines", "l2", _line("p2", 3), 6)  # no product p2 yet: nothing
        assert driver.read_output("out") == [("l1", {"qty": 2, "name": "apple"})]
        driver.pipe("products", "p2", {"name": "pear"}, 7)
        driver.pipe("products", "p1", {"name": "green apple"}, 8)
        records = driver.read_records("out")
        assert [(r.key, r.value, r.timestamp) for r in records] == [
            ("l2", {"qty": 3, "name": "pear"}, 7), ("l1", {"qty": 2, "name": "green apple"}, 8)]


def test_result_timestamp_is_the_later_of_the_subscription_and_the_right_row() -> None:
    with _driver() as driver:
        driver.pipe("products", "p1", {"name": "apple"}, 10)
        driver.pipe("lines", "l1", _line("p1", 1), 4)
        assert [r.timestamp for r in driver.read_records("out")] == [10]


def test_foreign_key_change_moves_the_row_and_retracts_the_old_result() -> None:
    with _driver() as driver:
        driver.pipe("products", "p1", {"name": "apple"}, 1)
        driver.pipe("products", "p2", {"name": "pear"}, 2)
        driver.pipe("lines", "l1", _line("p1", 1), 3)
        driver.pipe("lines", "l1", _line("p2", 1), 4)
        driver.pipe("products", "p1", {"name": "apple!"}, 5)  # l1 no longer subscribes to p1
        assert driver.read_output("out") == [("l1", {"qty": 1, "name": "apple"}), ("l1", {"qty": 1, "name": "pear"})]
        driver.pipe("lines", "l1", _line("p3", 1), 6)  # no p3: the old result is deleted
        assert driver.read_output("out") == [("l1", None)]
        subscriptions = driver.store(f"{_store_prefix(driver)}-subscription-store").all()
        assert list(subscriptions) == [combined_key(b"p3", b"l1")]  # subscribed to p3 only


def _store_prefix(driver: TopologyTestDriver) -> str:
    names = [s.name for s in driver.topology.stores() if s.name.endswith("-subscription-store")]
    assert len(names) == 1
    return names[0].removesuffix("-subscription-store")


def test_deletes_on_either_side() -> None:
    with _driver() as driver:
        driver.pipe("products", "p1", {"name": "apple"}, 1)
        driver.pipe("lines", "l1", _line("p1", 1), 2)
        driver.pipe("lines", "l2", _line("p1", 2), 3)
        driver.read_output("out")
        driver.pipe("products", "p1", None, 4)  # the right row goes: both results go
        assert driver.read_output("out") == [("l1", None), ("l2", None)]
        driver.pipe("products", "p1", {"name": "apple"}, 5)
        driver.pipe("lines", "l1", None, 6)  # the left row goes: its result goes, and its subscription
        assert driver.read_output("out") == [("l1", {"qty": 1, "name": "apple"}), ("l2", {"qty": 2, "name": "apple"}),
                                             ("l1", None)]
        driver.pipe("products", "p1", {"name": "apple!"}, 7)
        assert driver.read_output("out") == [("l2", {"qty": 2, "name": "apple!"})]


def test_inner_join_drops_a_row_whose_extractor_gives_none() -> None:
    with _driver() as driver:
        driver.pipe("products", "p1", {"name": "apple"}, 1)
        driver.pipe("lines", "l1", _line("p1", 1), 2)
        driver.pipe("lines", "l1", _line(None, 1), 3)  # was joined: deleted
        driver.pipe("lines", "l2", _line(None, 2), 4)  # never joined: nothing
        assert driver.read_output("out") == [("l1", {"qty": 1, "name": "apple"}), ("l1", None)]
        assert sum(n for p, n in driver.dropped.items() if p.endswith("-subscribe")) == 2


def test_left_join_keeps_rows_without_a_match_or_a_foreign_key() -> None:
    with _driver("left_join") as driver:
        driver.pipe("lines", "l1", _line("p1", 1), 1)
        driver.pipe("lines", "l2", _line(None, 2), 2)
        driver.pipe("products", "p1", {"name": "apple"}, 3)
        driver.pipe("products", "p1", None, 4)
        driver.pipe("lines", "l2", None, 5)
        assert driver.read_output("out") == [
            ("l1", {"qty": 1, "name": None}), ("l2", {"qty": 2, "name": None}), ("l1", {"qty": 1, "name": "apple"}),
            ("l1", {"qty": 1, "name": None}), ("l2", None)]


def test_a_response_for_a_value_the_row_no_longer_has_is_dropped() -> None:
    """Two updates of one row in one batch: the first one's response comes back after the second
    update, its hash no longer matches, and the result of the first foreign key never shows."""
    with _driver() as driver:
        driver.pipe("products", "p1", {"name": "apple"}, 1)
        driver.pipe("products", "p2", {"name": "pear"}, 2)
        driver.pipe_batch("lines", [("l1", _line("p1", 1), 3), ("l1", _line("p2", 1), 4)])
        assert driver.read_output("out") == [("l1", {"qty": 1, "name": "pear"})]


def test_derived_inputs_are_read_through_their_parents_stores() -> None:
    def derive(lines: Any, products: Any) -> tuple[Any, Any]:
        return (lines.map_values(lambda v: {**v, "qty": v["qty"] * 10}),
                products.filter(lambda k, v: not v["name"].startswith("x")))

    with _driver(derive=derive) as driver:
        driver.pipe("products", "p1", {"name": "apple"}, 1)
        driver.pipe("lines", "l1", _line("p1", 1), 2)
        driver.pipe("products", "p1", {"name": "xapple"}, 3)  # leaves the filter: the result goes
        driver.pipe("products", "p2", {"name": "xpear"}, 4)  # never in the filter: no update at all
        assert driver.read_output("out") == [("l1", {"qty": 10, "name": "apple"}), ("l1", None)]


def test_result_is_a_table_with_old_values_and_a_named_store() -> None:
    builder = StreamsBuilder()
    lines = builder.table("lines", key_serde="str", value_serde="json")
    products = builder.table("products", key_serde="str", value_serde="json")
    joined = lines.join(products, lambda line, p: line["qty"] * p["price"], foreign_key_extractor=_product,
                        name="line-totals")
    totals = joined.group_by(lambda k, v: ("all", v), key_serde="str").reduce(
        lambda agg, v: agg + v, lambda agg, v: agg - v, value_serde="json")
    totals.to_stream().to("out", key_serde="str", value_serde="json")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("products", "p1", {"price": 3}, 1)
        driver.pipe("products", "p2", {"price": 5}, 2)
        driver.pipe("lines", "l1", _line("p1", 2), 3)
        driver.pipe("lines", "l2", _line("p2", 1), 4)
        driver.pipe("lines", "l1", _line("p2", 2), 5)  # 6 becomes 10
        driver.pipe("products", "p2", None, 6)  # both lines leave the total
        assert driver.read_latest("out") == {"all": 0}
        driver.pipe("products", "p1", {"price": 4}, 7)
        driver.pipe("lines", "l3", _line("p1", 1), 8)
        assert driver.store("line-totals").all() == {"l3": 4}
        assert driver.read_latest("out") == {"all": 4}


def test_internal_topics_stores_and_their_partitioning() -> None:
    builder = StreamsBuilder()
    lines = builder.table("lines", key_serde="str", value_serde="json")
    products = builder.table("products", key_serde="str", value_serde="json")
    lines.left_join(products, _joined, foreign_key_extractor=_product, name="ol")
    topology = builder.build()
    topics = {spec.suffix: spec for spec in topology.repartition_topics}
    registration, response = topics["ol-subscription-registration-topic"], topics["ol-subscription-response-topic"]
    assert registration.follows_reader and response.follows_reader
    assert (registration.writer, registration.reader) == (response.reader, response.writer)
    stores = {spec.name: spec for spec in topology.stores()}
    assert stores["ol-subscription-store"].changelog_config() == {"cleanup.policy": "compact"}
    assert stores["ol"].logged and stores["ol"].timestamped


def test_only_inner_and_left_foreign_key_joins() -> None:
    builder = StreamsBuilder()
    lines = builder.table("lines", key_serde="str", value_serde="json")
    products = builder.table("products", key_serde="str", value_serde="json")
    from streamer.dsl.foreign_key_join import join_on_foreign_key

    with pytest.raises(TopologyError, match="inner .* or left"):
        join_on_foreign_key(lines, products, _joined, _product, None, None, "outer")


def test_wire_formats_round_trip() -> None:
    digest = value_hash(b"value")
    assert digest is not None and len(digest) == 16 and value_hash(None) is None
    serde = SubscriptionSerde()
    for sub in (Subscription(Instruction.PROPAGATE_ONLY_IF_VALUE, digest, 7, b'"l1"'),
                Subscription(Instruction.DELETE_AND_PROPAGATE, None, 0, b"")):
        assert serde.deserialize(serde.serialize(sub)) == sub
    responses = ResponseSerde(resolve_serde("json"))
    for response in (Response(digest, {"name": "apple"}, 3), Response(None, None, 0)):
        back = responses.deserialize(responses.serialize(response))
        assert back is not None
        assert (back.value_hash, back.foreign_value, back.partition) == (
            response.value_hash, response.foreign_value, response.partition)
    assert primary_key_of(combined_key(b"fk", b"pk")) == b"pk"
    with pytest.raises(DeserializationError, match="version 9"):
        serde.deserialize(bytes((9, 0, 0, 0, 0, 0, 0)))


def test_a_filtered_right_table_sends_nothing_for_rows_that_stay_outside_it() -> None:
    """The join asks its right input for old values, as Kafka Streams does: the filter then drops an
    update that matches neither before nor after, instead of passing on a delete that would reach
    every subscriber as a tombstone."""
    def derive(lines: Any, products: Any) -> tuple[Any, Any]:
        return lines, products.filter(lambda k, v: not v["name"].startswith("x"))

    with _driver(derive=derive) as driver:
        driver.pipe("products", "p1", {"name": "xapple"}, 1)
        driver.pipe("lines", "l1", _line("p1", 1), 2)  # subscribed, no match
        driver.pipe("products", "p1", {"name": "xapple!"}, 3)  # still outside the filter
        assert driver.read_output("out") == []
