"""Stream-table joins in the test driver: each stream record meets the table row of its key at its time."""

from __future__ import annotations

from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.dsl.stream import Stream
from streamer.dsl.table import Table
from streamer.errors import TopicMismatchError, TopologyError
from streamer.config import StreamerConfig
from streamer.runtime.topics import TopicManager
from streamer.testing import TopologyTestDriver


def _inputs(builder: StreamsBuilder) -> tuple[Stream, Table]:
    orders = builder.stream("orders", key_serde="str", value_serde="json")
    customers = builder.table("customers", key_serde="str", value_serde="json", name="customers")
    return orders, customers


def _pair(order: Any, customer: Any) -> list[Any]:
    return [order, customer]


def test_inner_join_reads_the_row_as_of_each_record_and_table_updates_emit_nothing() -> None:
    builder = StreamsBuilder()
    orders, customers = _inputs(builder)
    orders.join(customers, _pair).to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("orders", "c1", 1, timestamp=10)  # no row yet: dropped
        driver.pipe("customers", "c1", "ann", timestamp=11)
        driver.pipe("orders", "c1", 2, timestamp=12)
        driver.pipe("customers", "c1", "anne", timestamp=13)
        driver.pipe("orders", "c1", 3, timestamp=5)  # older than the row: joins the row the task has now
        driver.pipe("customers", "c1", None, timestamp=14)
        driver.pipe("orders", "c1", 4, timestamp=15)  # deleted: dropped
        out = driver.read_records("out")
    assert [(r.key, r.value, r.timestamp) for r in out] == [("c1", [2, "ann"], 12), ("c1", [3, "anne"], 5)]


def test_left_join_keeps_records_without_a_row_and_null_keys_but_drops_null_values() -> None:
    builder = StreamsBuilder()
    orders, customers = _inputs(builder)
    orders.left_join(customers, _pair).to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("orders", "c1", 1, timestamp=1)
        driver.pipe("customers", "c1", "ann", timestamp=2)
        driver.pipe_batch("orders", [("c1", 2, 3), (None, 3, 4), ("c1", None, 5), ("c2", 4, 6)])
        assert driver.read_output("out") == [("c1", [1, None]), ("c1", [2, "ann"]), (None, [3, None]),
                                             ("c2", [4, None])]
        assert driver.dropped["stream_table_left_join-3"] == 1  # the null value


def test_inner_join_drops_null_keys_and_counts_them() -> None:
    builder = StreamsBuilder()
    orders, customers = _inputs(builder)
    orders.join(customers, _pair, name="enrich").to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("orders", None, 1, timestamp=1)
        assert driver.read_output("out") == []
        assert driver.dropped == {"enrich": 1}


def test_derived_tables_are_read_through_their_parent_store() -> None:
    builder = StreamsBuilder()
    orders, customers = _inputs(builder)
    calls: list[Any] = []

    def shout(value: str) -> str:
        calls.append(value)
        return value.upper()

    vip = customers.filter(lambda k, v: v.startswith("v")).map_values(shout)
    orders.left_join(vip, _pair).to("out")
    topology = builder.build()
    assert [s.name for s in topology.stores()] == ["customers"]  # nothing materialized for the derived table
    with TopologyTestDriver(topology) as driver:
        driver.pipe("customers", "c1", "vera", timestamp=1)
        driver.pipe("customers", "c2", "bob", timestamp=2)
        calls.clear()
        driver.pipe_batch("orders", [("c1", 1, 3), ("c2", 2, 4), ("c1", 3, 5)])
        assert driver.read_output("out") == [("c1", [1, "VERA"]), ("c2", [2, None]), ("c1", [3, "VERA"])]
        assert calls == ["vera"]  # one read per distinct key of a batch


def test_aggregates_and_table_join_results_can_be_joined() -> None:
    builder = StreamsBuilder()
    orders, customers = _inputs(builder)
    counts = orders.group_by_key().count("order-counts")
    orders.join(counts, _pair).to("counted")
    regions = builder.table("regions", key_serde="str", value_serde="json", name="regions")
    orders.left_join(customers.join(regions, lambda c, r: f"{c}@{r}"), _pair).to("located")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("customers", "c1", "ann", timestamp=1)
        driver.pipe("orders", "c1", 7, timestamp=2)
        driver.pipe("regions", "c1", "eu", timestamp=3)
        driver.pipe("orders", "c1", 8, timestamp=4)
        assert driver.read_output("counted") == [("c1", [7, 1]), ("c1", [8, 2])]
        assert driver.read_output("located") == [("c1", [7, None]), ("c1", [8, "ann@eu"])]


def test_inputs_are_joined_in_timestamp_order_across_partitions() -> None:
    builder = StreamsBuilder()
    orders, customers = _inputs(builder)
    orders.left_join(customers, _pair).to("out")
    with TopologyTestDriver(builder.build(), max_task_idle_ms=1_000) as driver:
        driver.pipe_batch("orders", [("c1", 1, 10), ("c1", 2, 30)])
        driver.pipe_batch("customers", [("c1", "old", 5), ("c1", "new", 20)])
        assert driver.read_output("out") == [("c1", [1, "old"])]  # the order at 30 waits: customers may catch up
        driver.advance_wall_clock(1_000)
        assert driver.read_output("out") == [("c1", [2, "new"])]


def test_a_re_keyed_stream_is_repartitioned_like_the_table_before_the_join() -> None:
    builder = StreamsBuilder()
    orders, customers = _inputs(builder)
    orders.select_key(lambda k, v: v["customer"]).join(customers, _pair, name="enrich").to("out")
    topology = builder.build()
    [spec] = topology.repartition_topics
    assert (spec.suffix, spec.follows_reader) == ("enrich-repartition", True)
    with TopologyTestDriver(topology) as driver:
        driver.pipe("customers", "c1", "ann", timestamp=1)
        driver.pipe("orders", "o1", {"customer": "c1"}, timestamp=2)
        assert driver.read_output("out") == [("c1", [{"customer": "c1"}, "ann"])]
    manager = TopicManager(None, topology, StreamerConfig(application_id="app"))  # type: ignore[arg-type]
    counts = {"orders": 6, "customers": 2, "out": 1}
    assert [manager._input_partitions(sub.id, counts) for sub in topology.subtopologies] == [6, 2]


def test_inputs_with_different_partition_counts_fail_with_both_topics_and_the_fix() -> None:
    builder = StreamsBuilder()
    orders, customers = _inputs(builder)
    orders.join(customers, _pair, name="enrich").to("out")
    manager = TopicManager(None, builder.build(), StreamerConfig(application_id="app"))  # type: ignore[arg-type]
    with pytest.raises(TopicMismatchError) as raised:
        manager._input_partitions(0, {"orders": 4, "customers": 2})
    message = str(raised.value)
    assert "joins (enrich)" in message
    assert "customers has 2 partitions, orders has 4 partitions" in message
    assert "kafka-topics.sh --alter --topic customers --partitions 4" in message
    assert "stream.repartition(partitions=N)" in message


def test_tables_without_a_key_value_store_cannot_be_joined() -> None:
    from streamer.windows import TimeWindows

    builder = StreamsBuilder()
    orders, _ = _inputs(builder)
    windowed = orders.group_by_key().windowed_by(TimeWindows.of_size_and_grace(10, 0)).count("w")
    with pytest.raises(TopologyError, match="Materialize it first"):
        orders.join(windowed, _pair)
    with pytest.raises(TopologyError, match="join or left_join"):
        orders.outer_join(windowed, _pair, None)  # type: ignore[arg-type]
