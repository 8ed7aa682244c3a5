"""Aggregations and tables as Kafka Streams 4.x runs them with its record cache off.

The expected outputs are written out by hand from Kafka Streams' operators
(KStreamAggregate, KStreamReduce, KTableSource, KTableFilter, KTableRepartitionMap,
KTableAggregate, KTableReduce): timestamps included.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.errors import DeserializationError, StateStoreError
from streamer.processors.aggregate import StreamAggregate, TableAggregate
from streamer.processors.change import Change, ChangeSerde
from streamer.processors.table import TableFilter
from streamer.record import Record
from streamer.serde import JSON, STRING
from streamer.state import MemoryStore, WriteCache
from streamer.state.typed_store import TypedStore
from streamer.testing import TopologyTestDriver


def rows(driver: TopologyTestDriver, topic: str) -> list[tuple[Any, Any, int]]:
    """(key, value, timestamp) of what ``topic`` got since the last read."""
    return [(r.key, r.value, r.timestamp) for r in driver.read_records(topic)]


# -- timestamps: the later of the record's and the previous result's -----------------------


def test_stream_count_carries_the_latest_timestamp_of_its_records() -> None:
    builder = StreamsBuilder()
    builder.stream("in", key_serde="str", value_serde="json").group_by_key().count("counts").to_stream().to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("in", [("a", 1, 10), ("a", 1, 5), ("b", 1, 3), ("a", 1, 20), ("a", 1, 15)])
        assert rows(driver, "out") == [("a", 1, 10), ("a", 2, 10), ("b", 1, 3), ("a", 3, 20), ("a", 4, 20)]
        counts = driver.store("counts")
        assert counts.get("a") == 4
        assert counts.get_with_timestamp("a") == (4, 20)
        assert counts.get_with_timestamp("zzz") is None
        assert counts.all() == {"a": 4, "b": 1}


def test_stream_reduce_carries_the_latest_timestamp_of_its_records() -> None:
    builder = StreamsBuilder()
    source = builder.stream("in", key_serde="str", value_serde="json")
    source.group_by_key().reduce(lambda total, v: total + v, "sums").to_stream().to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("in", [("a", 1, 10), ("a", 2, 5), ("a", 3, 11)])
        assert rows(driver, "out") == [("a", 1, 10), ("a", 3, 10), ("a", 6, 11)]
        assert driver.store("sums").get_with_timestamp("a") == (6, 11)


def test_table_source_keeps_each_records_own_timestamp() -> None:
    builder = StreamsBuilder()
    builder.table("t", key_serde="str", value_serde="json", name="t-store").to_stream().to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("t", [("a", 1, 10), ("a", 2, 5), ("a", None, 7), ("a", 3, 1)])
        assert rows(driver, "out") == [("a", 1, 10), ("a", 2, 5), ("a", None, 7), ("a", 3, 1)]
        assert driver.store("t-store").get_with_timestamp("a") == (3, 1)


def test_a_timestamped_changelog_reads_as_plain_values() -> None:
    builder = StreamsBuilder()
    builder.stream("in", key_serde="str", value_serde="json").group_by_key().count("counts")
    with TopologyTestDriver(builder.build(), application_id="app") as driver:
        driver.pipe("in", "a", 1, timestamp=4)
        [raw] = driver.read_records("app-counts-changelog", key_serde="bytes", value_serde="bytes")
        assert raw.value == (4).to_bytes(8, "big") + b"1"
        driver.pipe("in", "a", 1, timestamp=9)
        assert driver.read_output("app-counts-changelog") == [("a", 2)]


# -- table aggregates: one net change for a row that stays in its group ----------------------


def users_by_region(builder: StreamsBuilder) -> None:
    users = builder.table("users", key_serde="str", value_serde="json", name="users")
    by_region = users.group_by(lambda _user, p: (p["region"], p), key_serde="str", name="by-region")
    by_region.count("counts").to_stream().to("counts")
    (by_region.aggregate(lambda: 0, lambda _r, p, total: total + p["spend"], lambda _r, p, total: total - p["spend"],
                         "spend")
        .to_stream().to("spend"))


def test_a_row_updated_within_its_group_is_one_net_change() -> None:
    builder = StreamsBuilder()
    users_by_region(builder)
    with TopologyTestDriver(builder.build(), application_id="app") as driver:
        driver.pipe_many("users", [("ann", {"region": "eu", "spend": 10}, 1), ("bob", {"region": "eu", "spend": 5}, 2)])
        assert rows(driver, "spend") == [("eu", 10, 1), ("eu", 15, 2)]
        assert rows(driver, "counts") == [("eu", 1, 1), ("eu", 2, 2)]
        driver.read_output("app-by-region-repartition")
        driver.pipe("users", "bob", {"region": "eu", "spend": 6}, timestamp=3)
        assert rows(driver, "spend") == [("eu", 16, 3)]  # not 10 then 16
        assert rows(driver, "counts") == [("eu", 2, 3)]  # the count did not change, the update still comes
        assert driver.read_output("app-by-region-repartition", value_serde=ChangeSerde(JSON)) == [
            ("eu", Change({"region": "eu", "spend": 6}, {"region": "eu", "spend": 5})),
        ]


def test_a_row_that_changes_group_is_subtracted_then_added() -> None:
    builder = StreamsBuilder()
    users_by_region(builder)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("users", [("ann", {"region": "eu", "spend": 10}, 10),
                                   ("bob", {"region": "eu", "spend": 5}, 5)])
        driver.read_output("counts")
        driver.pipe("users", "ann", {"region": "us", "spend": 10}, timestamp=7)
        # the subtraction's result keeps eu's later timestamp
        assert rows(driver, "counts") == [("eu", 1, 10), ("us", 1, 7)]
        driver.pipe("users", "bob", None, timestamp=12)
        assert rows(driver, "counts") == [("eu", 0, 12)]
        assert driver.store("counts").get_with_timestamp("eu") == (0, 12)


def test_table_reduce_applies_a_same_group_update_in_one_step() -> None:
    builder = StreamsBuilder()
    (builder.table("scores", key_serde="str", value_serde="json")
        .group_by(lambda _u, s: (s["team"], s["points"]), key_serde="str", value_serde="json")
        .reduce(lambda a, b: a + b, lambda a, b: a - b, "team-points")
        .to_stream().to("out"))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("scores", [("a", {"team": "x", "points": 3}, 1), ("b", {"team": "x", "points": 4}, 9),
                                    ("a", {"team": "x", "points": 5}, 2), ("b", None, 3)])
        assert rows(driver, "out") == [("x", 3, 1), ("x", 7, 9), ("x", 9, 9), ("x", 5, 9)]


def test_rows_selecting_no_group_or_no_value_are_left_out() -> None:
    builder = StreamsBuilder()
    (builder.table("users", key_serde="str", value_serde="json")
        .group_by(lambda _u, p: (p.get("region"), p.get("spend")), key_serde="str", value_serde="json")
        .reduce(lambda a, b: a + b, lambda a, b: a - b, "spend")
        .to_stream().to("out"))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("users", [("ann", {"spend": 3}, 1), ("ann", {"region": "eu"}, 2),
                                   ("ann", {"region": "eu", "spend": 4}, 3), ("ann", {"spend": 1}, 4)])
        assert rows(driver, "out") == [("eu", 4, 3), ("eu", 0, 4)]


def test_a_stream_aggregate_sends_its_initial_value_as_the_old_value() -> None:
    """KStreamAggregate's old value for a new key is the initializer's; re-grouping subtracts it.

    Words counted, then counts of words per count: the first "x" moves from count 0
    (where nothing was) to count 1, and count 0's empty aggregate is forwarded as a delete.
    """
    builder = StreamsBuilder()
    (builder.stream("words", key_serde="str", value_serde="str")
        .group_by_key().count("word-counts")
        .group_by(lambda word, n: (n, word), key_serde="json", value_serde="str")
        .count("words-per-count")
        .to_stream().to("out"))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("words", [("x", "x", 1), ("y", "y", 2), ("x", "x", 3)])
        assert rows(driver, "out") == [(0, None, 1), (1, 1, 1), (0, None, 2), (1, 2, 2), (1, 1, 3), (2, 1, 3)]


# -- table filters: the tombstones Kafka Streams forwards --------------------------------------


def test_a_filter_on_an_unmaterialized_table_deletes_on_every_non_matching_update() -> None:
    builder = StreamsBuilder()
    builder.table("t", key_serde="str", value_serde="json").filter(lambda _k, v: v > 10).to_stream().to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("t", [("a", 5, 1), ("a", 1, 2), ("a", 20, 3), ("b", None, 4)])
        assert rows(driver, "out") == [("a", None, 1), ("a", None, 2), ("a", 20, 3), ("b", None, 4)]


def test_a_filter_on_an_aggregate_drops_updates_that_never_matched() -> None:
    builder = StreamsBuilder()
    (builder.stream("in", key_serde="str", value_serde="json").group_by_key().count("counts")
        .filter(lambda _k, n: n > 2).to_stream().to("out"))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("in", [("a", 0, 1), ("a", 0, 2), ("a", 0, 3), ("a", 0, 4)])
        assert rows(driver, "out") == [("a", 3, 3), ("a", 4, 4)]


def test_a_filter_on_a_named_table_drops_updates_that_never_matched() -> None:
    builder = StreamsBuilder()
    (builder.table("t", key_serde="str", value_serde="json", name="t-store")
        .filter(lambda _k, v: v > 10).to_stream().to("out"))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("t", [("a", 5, 1), ("a", 20, 2), ("a", 1, 3), ("a", 2, 4), ("a", None, 5)])
        assert rows(driver, "out") == [("a", 20, 2), ("a", None, 3)]


def test_a_filter_with_old_values_forwards_only_real_changes() -> None:
    keep_big = TableFilter("f", lambda _k, v: v > 10, send_old_values=True)
    updates = [Change(5, None), Change(20, 5), Change(1, 20), Change(2, 1), Change(None, 2)]
    out = keep_big.process([Record("a", change, i) for i, change in enumerate(updates)])
    assert [(r.value, r.timestamp) for r in out] == [(Change(20, None), 1), (Change(None, 20), 2)]


# -- batches: aggregates stay objects for the batch, timestamps too --------------------------


class StoreContext:
    """Just what the aggregate processors ask of their context: one store, no errors."""

    def __init__(self) -> None:
        self.cache = WriteCache(MemoryStore("s"))

    def get_store(self, name: str) -> WriteCache:
        return self.cache

    def record_error(self, processor: str, record: Record, error: Exception) -> None:
        raise error


def test_a_batch_carries_timestamps_between_its_records_and_writes_each_key_once() -> None:
    context = StoreContext()
    count = StreamAggregate("count", "s", STRING, JSON, lambda: 0, lambda _k, _v, n: n + 1)
    count.init(context)
    out = count.process([Record("a", 1, 10), Record("a", 1, 5), Record("b", 1, 1), Record("a", 1, 12)])
    assert [(r.key, r.value, r.timestamp) for r in out] == [
        ("a", Change(1, 0), 10), ("a", Change(2, 1), 10), ("b", Change(1, 0), 1), ("a", Change(3, 2), 12),
    ]
    assert context.cache.dirty_count == 2
    out = count.process([Record("a", 1, 11)])
    assert [(r.value, r.timestamp) for r in out] == [(Change(4, 3), 12)]
    assert TypedStore(context.cache, STRING, JSON, timestamped=True).get_with_timestamp("a") == (4, 12)


def test_a_table_aggregate_batch_nets_changes_per_group() -> None:
    context = StoreContext()
    total = TableAggregate("sum", "s", STRING, JSON, lambda: 0, lambda _k, v, t: t + v, lambda _k, v, t: t - v)
    total.init(context)
    changes = [Record("x", Change(3, None), 5), Record("x", Change(4, 3), 2), Record("x", Change(None, 4), 9)]
    out = total.process(changes)
    assert [(r.value, r.timestamp) for r in out] == [(Change(3, None), 5), (Change(4, 3), 5), (Change(0, 4), 9)]
    assert context.cache.dirty_count == 1


# -- the change serde and the typed store --------------------------------------------------


@pytest.mark.parametrize("change, data", [
    (Change(None, "old"), b"\x00old"),
    (Change("new", None), b"\x01new"),
    (Change("new", "old"), b"\x02\x03newold"),
    (Change("", "old"), b"\x02\x00old"),
])
def test_change_serde_layout(change: Change, data: bytes) -> None:
    serde = ChangeSerde(STRING)
    assert serde.serialize(change) == data
    assert serde.deserialize(data) == change


def test_change_serde_round_trips_long_values_and_rejects_foreign_bytes() -> None:
    serde = ChangeSerde(STRING)
    change = Change("n" * 300, "o" * 5)
    data = serde.serialize(change)
    assert data[:3] == b"\x02\xac\x02"  # 300 as a varint
    assert serde.deserialize(data) == change
    assert serde.deserialize(None) is None
    with pytest.raises(DeserializationError, match="tag byte 7"):
        serde.deserialize(b"\x07x")
    with pytest.raises(DeserializationError, match="announces a 9-byte new value"):
        serde.deserialize(b"\x02\x09ab")


def test_typed_store_of_a_timestamped_store_needs_timestamps_to_write() -> None:
    cache = WriteCache(MemoryStore("s"))
    store = TypedStore(cache, STRING, JSON, timestamped=True)
    store.put("a", {"n": 1}, timestamp=7)
    assert store.get("a") == {"n": 1} and store.get_with_timestamp("a") == ({"n": 1}, 7)
    assert dict(store.range()) == {"a": {"n": 1}}
    with pytest.raises(StateStoreError, match="pass put"):
        store.put("b", 1)
    with pytest.raises(StateStoreError, match="keeps no timestamps"):
        TypedStore(cache, STRING, JSON).get_with_timestamp("a")
