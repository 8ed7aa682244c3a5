"""Global tables and stream joins with them, in the test driver (Kafka Streams' rules, KStreamKTableJoinProcessor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.dsl.global_table import GlobalTable
from streamer.dsl.stream import Stream
from streamer.errors import StateStoreError, TopologyError
from streamer.runtime.global_store import GlobalStore
from streamer.testing import TopologyTestDriver
from streamer.testing.topics import Message
from streamer.topology.topology import GlobalStoreSpec


def _orders(left: bool = False, selector: Any = None) -> tuple[StreamsBuilder, GlobalTable, Stream]:
    """Orders {"item", "qty"} joined with the item catalogue by the order's item."""
    builder = StreamsBuilder()
    items = builder.global_table("items", key_serde="str", value_serde="json", name="items")
    orders = builder.stream("orders", key_serde="str", value_serde="json")
    join = orders.left_join if left else orders.join
    join(items, lambda order, item: {**order, "item_name": None if item is None else item["name"]},
         key_selector=selector or (lambda key, order: order["item"])).to("out", key_serde="str", value_serde="json")
    return builder, items, orders


def rows(driver: TopologyTestDriver, topic: str = "out") -> list[tuple[Any, Any, int]]:
    return [(r.key, r.value, r.timestamp) for r in driver.read_records(topic)]


def test_inner_join_reads_the_row_of_the_selected_key_and_keeps_the_streams_key_and_time() -> None:
    builder, _, _ = _orders()
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("items", "i1", {"name": "pen"}, timestamp=100)
        driver.pipe("orders", "o1", {"item": "i1", "qty": 2}, timestamp=5)
        driver.pipe("orders", "o2", {"item": "i9", "qty": 1}, timestamp=6)  # no such item: dropped
        assert rows(driver) == [("o1", {"item": "i1", "qty": 2, "item_name": "pen"}, 5)]


def test_table_updates_and_deletes_apply_at_once_to_the_records_that_follow() -> None:
    builder, _, _ = _orders(left=True)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("orders", "o1", {"item": "i1"}, timestamp=1)
        driver.pipe("items", "i1", {"name": "pen"}, timestamp=2)
        driver.pipe("orders", "o2", {"item": "i1"}, timestamp=3)
        driver.pipe("items", "i1", {"name": "ink pen"}, timestamp=4)
        driver.pipe("orders", "o3", {"item": "i1"}, timestamp=5)
        driver.pipe("items", "i1", None, timestamp=6)
        driver.pipe("orders", "o4", {"item": "i1"}, timestamp=7)
        assert [(k, v["item_name"]) for k, v, _ in rows(driver)] == [
            ("o1", None), ("o2", "pen"), ("o3", "ink pen"), ("o4", None)]


def test_null_selected_key_inner_drops_left_joins_with_none_and_null_values_always_drop() -> None:
    def selector(key: Any, order: Any) -> Any:
        return order.get("item")

    expectations = {
        False: ([("o1", "pen"), (None, "pen")], {"join_global_table-1": 2}),
        True: ([("o1", "pen"), ("o2", None), (None, "pen")], {"left_join_global_table-1": 1}),
    }
    for left, (joined, dropped) in expectations.items():
        builder, _, _ = _orders(left=left, selector=selector)
        with TopologyTestDriver(builder.build()) as driver:
            driver.pipe("items", "i1", {"name": "pen"})
            driver.pipe("orders", "o1", {"item": "i1"})
            driver.pipe("orders", "o2", {"qty": 1})  # selects None
            driver.pipe("orders", "o3", None)  # a null value is never joined
            driver.pipe("orders", None, {"item": "i1"})  # the stream's own key plays no part
            assert [(k, v["item_name"]) for k, v, _ in rows(driver)] == joined
            assert driver.dropped == dropped


def test_global_table_is_readable_through_the_driver_and_read_only_for_processors() -> None:
    builder, _, _ = _orders()
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_batch("items", [("i1", {"name": "pen"}), ("i2", {"name": "ink"}), (None, {"name": "nokey"})])
        driver.pipe("items", "i2", None)
        view = driver.store("items")
        assert view.all() == {"i1": {"name": "pen"}}
        assert view.get("i1") == {"name": "pen"} and "i2" not in view
        with pytest.raises(StateStoreError, match="read-only"):
            driver._globals["items"].reader.put(b"x", b"y")


def test_joins_need_no_co_partitioning_or_repartition_even_after_a_key_change() -> None:
    builder = StreamsBuilder()
    items = builder.global_table("items", key_serde="str", value_serde="json", name="items")
    (builder.stream("orders", key_serde="str", value_serde="json")
     .select_key(lambda k, v: v["customer"])
     .join(items, lambda order, item: item["name"], key_selector=lambda k, v: v["item"])
     .to("out", key_serde="str", value_serde="json"))
    topology = builder.build()
    assert topology.repartition_topics == [] and len(topology.subtopologies) == 1
    assert [g.topic for g in topology.global_stores] == ["items"]
    assert topology.subtopologies[0].stores == []
    with TopologyTestDriver(topology, partitions={"items": 3}) as driver:
        driver.pipe_many("items", [(f"i{n}", {"name": f"item {n}"}) for n in range(6)])
        driver.pipe_many("orders", [("o1", {"customer": "c1", "item": "i4"}), ("o2", {"customer": "c2", "item": "i0"})])
        assert driver.read_output("out") == [("c1", "item 4"), ("c2", "item 0")]


def test_topology_errors_name_what_to_change() -> None:
    builder = StreamsBuilder()
    items = builder.global_table("items")
    orders = builder.stream("orders")
    with pytest.raises(TopologyError, match="key_selector"):
        orders.join(items, lambda a, b: a)
    with pytest.raises(TopologyError, match="outer_join joins two streams"):
        orders.outer_join(items, lambda a, b: a, None)  # type: ignore[arg-type]

    async def joiner(a: Any, b: Any) -> Any:
        return a

    with pytest.raises(TopologyError, match="async"):
        orders.join(items, joiner, key_selector=lambda k, v: v)
    with pytest.raises(TopologyError, match="store name 'items-global' is used twice"):
        builder.global_table("more-items", name="items-global")
    twice = StreamsBuilder()
    twice.global_table("items")
    twice.stream("items").to("out")
    with pytest.raises(TopologyError, match="read by global table items-global and by source"):
        twice.build()
    other = StreamsBuilder().global_table("elsewhere")
    with pytest.raises(TopologyError, match="another StreamsBuilder"):
        orders.join(other, lambda a, b: a, key_selector=lambda k, v: v)


def test_describe_lists_the_join_with_its_global_store() -> None:
    builder, _, _ = _orders()
    assert "join_global_table" in builder.build().describe()


# -- the store a worker keeps: offsets per partition, checkpoint, generations ------------------


def _spec() -> GlobalStoreSpec:
    from streamer.dsl.global_table import global_table_spec
    from streamer.serde import STRING

    return global_table_spec("items", "items", STRING, STRING)


def _messages(partition: int, start: int, *rows: tuple[bytes | None, bytes | None]) -> list[Message]:
    return [Message("items", partition, start + n, key, value, 0, None) for n, (key, value) in enumerate(rows)]


def test_a_reopened_store_resumes_at_the_checkpointed_offsets(tmp_path: Path) -> None:
    store = GlobalStore(_spec(), tmp_path, "rocksdb")
    store.apply(0, _messages(0, 0, (b"a", b"1"), (None, b"skipped"), (b"b", b"2")))
    store.apply(1, _messages(1, 5, (b"c", b"3")))
    store.checkpoint()
    store.apply(0, _messages(0, 3, (b"a", None)))  # after the checkpoint: read again after a restart
    store.close()
    again = GlobalStore(_spec(), tmp_path, "rocksdb")
    assert again.offsets == {0: 3, 1: 6}
    assert again.reader.get(b"c") == b"3"
    again.close()


def test_a_store_the_checkpoint_does_not_describe_is_rebuilt_from_the_start(tmp_path: Path) -> None:
    store = GlobalStore(_spec(), tmp_path, "rocksdb")
    store.apply(0, _messages(0, 0, (b"a", b"1")))
    store.checkpoint()
    store.close()
    store.store.destroy()  # the data is gone, the checkpoint stays
    again = GlobalStore(_spec(), tmp_path, "rocksdb")
    assert again.offsets == {} and again.reader.get(b"a") is None
    again.close()
    memory = GlobalStore(_spec(), tmp_path, "memory")  # a memory store never matches a checkpoint
    assert memory.offsets == {}
    memory.close()


@pytest.mark.parametrize("garbled", [b"", b"{\"generation\": 1, \"offs", b"[]", b"{\"generation\": 1}",
                                     b"{\"generation\": \"x\", \"offsets\": {}}"])
def test_an_unreadable_checkpoint_rebuilds_the_store_instead_of_failing_every_start(tmp_path: Path,
                                                                                     garbled: bytes) -> None:
    store = GlobalStore(_spec(), tmp_path, "rocksdb")
    store.apply(0, _messages(0, 0, (b"a", b"1")))
    store.checkpoint()
    store.close()
    (tmp_path / "items.checkpoint").write_bytes(garbled)
    again = GlobalStore(_spec(), tmp_path, "rocksdb")
    assert again.offsets == {} and again.reader.get(b"a") is None
    again.close()


def test_a_damaged_global_store_is_rebuilt_from_its_topic(tmp_path: Path) -> None:
    store = GlobalStore(_spec(), tmp_path, "rocksdb")
    store.apply(0, _messages(0, 0, (b"a", b"1")))
    store.checkpoint()
    store.close()
    (tmp_path / "items" / "CURRENT").unlink()
    again = GlobalStore(_spec(), tmp_path, "rocksdb")
    assert again.offsets == {} and again.reader.get(b"a") is None
    again.close()
