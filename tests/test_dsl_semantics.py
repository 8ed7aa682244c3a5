"""What each DSL operation does to records, checked end to end with the test driver (no broker)."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest

from streamer import INT, JSON, STRING, FunctionSerde, StreamsBuilder
from streamer.dsl.stream import Stream
from streamer.partitioner import default_partition
from streamer.testing import TopologyTestDriver

IN = "in"
OUT = "out"


@pytest.fixture
def builder() -> StreamsBuilder:
    return StreamsBuilder()


@pytest.fixture
def source(builder: StreamsBuilder) -> Stream:
    """``in`` with string keys and JSON values: the stream most tests start from."""
    return builder.stream(IN, key_serde="str", value_serde="json")


@pytest.fixture
def run(builder: StreamsBuilder) -> Iterator[Any]:
    """``run(rows)`` builds the topology, pipes ``rows`` into ``in`` and returns what ``out`` got."""
    drivers: list[TopologyTestDriver] = []

    def pipe_and_read(rows: list[tuple[Any, ...]], topic: str = OUT, **read: Any) -> list[tuple[Any, Any]]:
        driver = TopologyTestDriver(builder.build())
        drivers.append(driver)
        driver.pipe_many(IN, rows)
        return driver.read_output(topic, **read)

    yield pipe_and_read
    for driver in drivers:
        driver.close()


# -- stateless operations --------------------------------------------------------------------


def test_filter_keeps_matching_records(source: Stream, run: Any) -> None:
    source.filter(lambda _k, v: v % 2 == 0).to(OUT)
    assert run([("a", 1), ("b", 2), ("c", 4)]) == [("b", 2), ("c", 4)]


def test_filter_not_drops_matching_records(source: Stream, run: Any) -> None:
    source.filter_not(lambda _k, v: v % 2 == 0).to(OUT)
    assert run([("a", 1), ("b", 2), ("c", 3)]) == [("a", 1), ("c", 3)]


def test_map_replaces_key_and_value(source: Stream, run: Any) -> None:
    source.map(lambda k, v: (str(v), k)).to(OUT, value_serde="str")
    assert run([("a", 1), ("b", 2)]) == [("1", "a"), ("2", "b")]


def test_map_values_without_key(source: Stream, run: Any) -> None:
    source.map_values(lambda v: v * 10).to(OUT)
    assert run([("a", 1), ("b", 2)]) == [("a", 10), ("b", 20)]


def test_map_values_with_key(source: Stream, run: Any) -> None:
    source.map_values(lambda k, v: f"{k}={v}", with_key=True).to(OUT)
    assert run([("a", 1), ("b", 2)]) == [("a", "a=1"), ("b", "b=2")]


def test_flat_map_emits_every_pair_in_order(source: Stream, run: Any) -> None:
    source.flat_map(lambda k, v: [(f"{k}{i}", i) for i in range(v)]).to(OUT)
    assert run([("a", 2), ("b", 0), ("c", 1)]) == [("a0", 0), ("a1", 1), ("c0", 0)]


def test_flat_map_values_keeps_the_key(source: Stream, run: Any) -> None:
    source.flat_map_values(lambda v: v.split()).to(OUT)
    assert run([("k", "x y"), ("j", "z")]) == [("k", "x"), ("k", "y"), ("j", "z")]


def test_flat_map_values_with_key(source: Stream, run: Any) -> None:
    source.flat_map_values(lambda k, v: [k] * v, with_key=True).to(OUT)
    assert run([("k", 2)]) == [("k", "k"), ("k", "k")]


def test_select_key_replaces_only_the_key(source: Stream, run: Any) -> None:
    source.select_key(lambda _k, v: v["id"]).to(OUT)
    assert run([("old", {"id": "new"})]) == [("new", {"id": "new"})]


def test_peek_sees_each_record_and_forwards_it_unchanged(source: Stream, run: Any) -> None:
    seen: list[tuple[str, int]] = []
    source.peek(lambda k, v: seen.append((k, v))).to(OUT)
    assert run([("a", 1), ("b", 2)]) == [("a", 1), ("b", 2)]
    assert seen == [("a", 1), ("b", 2)]


def test_foreach_sees_each_record_and_ends_the_stream(builder: StreamsBuilder, source: Stream) -> None:
    seen: list[tuple[str, int]] = []
    source.foreach(lambda k, v: seen.append((k, v)))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many(IN, [("a", 1), ("b", 2)])
    assert seen == [("a", 1), ("b", 2)]


def test_split_routes_to_the_first_matching_branch_then_default(builder: StreamsBuilder, source: Stream) -> None:
    branches = (
        source.split(name="sizes")
        .branch(lambda _k, v: v < 10, name="small")
        .branch(lambda _k, v: v < 100, name="medium")
        .default_branch()
    )
    assert sorted(branches) == ["default", "medium", "small"]
    for name, branch in branches.items():
        branch.to(name)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many(IN, [("a", 5), ("b", 50), ("c", 500), ("d", 1)])
        assert driver.read_output("small") == [("a", 5), ("d", 1)]
        assert driver.read_output("medium") == [("b", 50)]
        assert driver.read_output("default") == [("c", 500)]


def test_split_without_default_drops_unmatched_records(builder: StreamsBuilder, source: Stream, run: Any) -> None:
    branches = source.split().branch(lambda _k, v: v > 0).no_default_branch()
    assert list(branches) == ["1"]
    branches["1"].to(OUT)
    assert run([("a", -1), ("b", 1)]) == [("b", 1)]


def test_merge_keeps_input_order(builder: StreamsBuilder, source: Stream) -> None:
    other = builder.stream("other", key_serde="str", value_serde="json")
    source.merge(other).to(OUT)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe(IN, "a", 1)
        driver.pipe("other", "b", 2)
        driver.pipe(IN, "c", 3)
        driver.pipe("other", "d", 4)
        assert driver.read_output(OUT) == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]


def test_merge_of_branches_of_one_stream_keeps_input_order(source: Stream, run: Any) -> None:
    parts = source.split().branch(lambda _k, v: v % 2 == 0, name="even").default_branch("odd")
    parts["even"].map_values(lambda v: v * 100).merge(parts["odd"]).to(OUT)
    assert run([("a", 1), ("b", 2), ("c", 3), ("d", 4)]) == [("a", 1), ("b", 200), ("c", 3), ("d", 400)]


def test_to_with_a_topic_function(builder: StreamsBuilder, source: Stream) -> None:
    source.to(lambda _k, v: f"out-{v['kind']}")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many(IN, [("a", {"kind": "x"}), ("b", {"kind": "y"}), ("c", {"kind": "x"})])
        assert driver.read_output("out-x") == [("a", {"kind": "x"}), ("c", {"kind": "x"})]
        assert driver.read_output("out-y", key_serde="bytes", value_serde="bytes") == [(b"b", b'{"kind":"y"}')]


def test_to_with_a_custom_partitioner(builder: StreamsBuilder, source: Stream) -> None:
    calls: list[tuple[str, int, int]] = []

    def by_value(key: str, value: int, partitions: int) -> int:
        calls.append((key, value, partitions))
        return value % partitions

    source.to(OUT, partitioner=by_value)
    source.to("default-placement")
    topology = builder.build()
    with TopologyTestDriver(topology, partitions={OUT: 3, "default-placement": 4}) as driver:
        driver.pipe_many(IN, [("a", 4), ("b", 5)])
        assert [(r.key, r.partition) for r in driver.read_records(OUT)] == [("a", 1), ("b", 2)]
        placed = [(r.key, r.partition) for r in driver.read_records("default-placement")]
        assert placed == [(k, default_partition(k.encode(), 4)) for k in ("a", "b")]
    assert calls == [("a", 4, 3), ("b", 5, 3)]


def test_async_map_values(source: Stream, run: Any) -> None:
    async def slow_double(value: int) -> int:
        await asyncio.sleep(0)
        return value * 2

    source.map_values(slow_double).to(OUT)
    assert run([("a", 1), ("b", 2)]) == [("a", 2), ("b", 4)]


def test_async_filter_and_map_values_with_key(source: Stream, run: Any) -> None:
    async def positive(_key: str, value: int) -> bool:
        return value > 0

    async def label(key: str, value: int) -> str:
        return f"{key}:{value}"

    source.filter(positive).map_values(label, with_key=True).to(OUT)
    assert run([("a", -1), ("b", 2)]) == [("b", "b:2")]


# -- serdes ----------------------------------------------------------------------------------


def test_serdes_round_trip_through_bytes(builder: StreamsBuilder) -> None:
    """Keys and values really cross the serdes: a custom serde's bytes reach the output topic."""
    upper = FunctionSerde(lambda s: s.upper().encode(), lambda b: b.decode().lower())
    stream = builder.stream(IN, key_serde=upper, value_serde=INT)
    stream.map_values(lambda v: {"n": v}).to(OUT, value_serde=JSON)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe(IN, "key", 7)
        assert driver.read_output(OUT, key_serde="bytes", value_serde="bytes") == [(b"KEY", b'{"n":7}')]
        driver.pipe(IN, "key", 8)
        assert driver.read_output(OUT) == [("key", {"n": 8})]


def test_serdes_by_name_and_default_bytes(builder: StreamsBuilder) -> None:
    builder.stream(IN).to(OUT)
    builder.stream("typed", key_serde=STRING, value_serde="float").to("typed-out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe(IN, b"k", b"\x00\x01")
        driver.pipe("typed", "pi", 3.5)
        assert driver.read_output(OUT) == [(b"k", b"\x00\x01")]
        assert driver.read_output("typed-out") == [("pi", 3.5)]


# -- aggregations ----------------------------------------------------------------------------


def wordcount(builder: StreamsBuilder) -> None:
    (
        builder.stream("lines", value_serde="str")
        .flat_map_values(str.split)
        .group_by(lambda _k, word: word, key_serde="str")
        .count("counts")
        .to_stream()
        .to("word-counts", value_serde="json")
    )


def test_group_by_and_count(builder: StreamsBuilder) -> None:
    wordcount(builder)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("lines", None, "a b a")
        driver.pipe("lines", None, "b c")
        assert driver.read_output("word-counts") == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("c", 1)]
        assert driver.store("counts").all() == {"a": 2, "b": 2, "c": 1}


def test_group_by_key_reduce(builder: StreamsBuilder, source: Stream) -> None:
    source.group_by_key().reduce(lambda total, v: total + v, "sums").to_stream().to(OUT)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many(IN, [("a", 1), ("b", 10), ("a", 2), ("a", 3)])
        assert driver.read_output(OUT) == [("a", 1), ("b", 10), ("a", 3), ("a", 6)]
        assert driver.store("sums").get("a") == 6


def test_reduce_after_a_key_change_repartitions(builder: StreamsBuilder, source: Stream) -> None:
    source.select_key(lambda _k, v: v["user"]).map_values(lambda v: v["amount"]).group_by_key(
        key_serde="str", value_serde="int"
    ).reduce(lambda a, b: a + b, "totals", value_serde="json").to_stream().to(OUT)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many(IN, [("o1", {"user": "u", "amount": 5}), ("o2", {"user": "u", "amount": 7})])
        assert driver.read_output(OUT) == [("u", 5), ("u", 12)]
        assert driver.read_output("test-app-totals-repartition", value_serde="bytes") == [
            ("u", (5).to_bytes(8, "big")),
            ("u", (7).to_bytes(8, "big")),
        ]


def test_aggregate_from_an_initializer(builder: StreamsBuilder, source: Stream) -> None:
    source.group_by_key().aggregate(
        lambda: {"count": 0, "sum": 0},
        lambda _k, v, agg: {"count": agg["count"] + 1, "sum": agg["sum"] + v},
        "stats",
    ).to_stream().to(OUT)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many(IN, [("a", 4), ("a", 6)])
        assert driver.read_output(OUT) == [("a", {"count": 1, "sum": 4}), ("a", {"count": 2, "sum": 10})]


def test_aggregations_skip_null_keys_and_values(builder: StreamsBuilder, source: Stream) -> None:
    source.group_by_key().count("counts").to_stream().to(OUT)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many(IN, [(None, 1), ("a", None), ("a", 1)])
        assert driver.read_output(OUT) == [("a", 1)]


# -- tables ----------------------------------------------------------------------------------


def test_table_from_a_topic_with_tombstones(builder: StreamsBuilder) -> None:
    builder.table("profiles", key_serde="str", value_serde="json", name="profiles").to_stream().to(OUT)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("profiles", [("u1", {"v": 1}), ("u2", {"v": 2}), ("u1", {"v": 3}), ("u1", None), ("u9", None)])
        # a tombstone for a key never seen is forwarded too, as Kafka Streams' KTableSource does
        assert driver.read_output(OUT) == [("u1", {"v": 1}), ("u2", {"v": 2}), ("u1", {"v": 3}), ("u1", None),
                                           ("u9", None)]
        assert driver.store("profiles").all() == {"u2": {"v": 2}}
        assert driver.store("profiles").get("u1") is None


def test_table_filter_deletes_rows_that_stop_matching(builder: StreamsBuilder) -> None:
    table = builder.table("t", key_serde="str", value_serde="json")
    table.filter(lambda _k, v: v > 10).to_stream().to(OUT)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("t", [("a", 5), ("a", 20), ("a", 30), ("a", 1), ("b", 50), ("b", None)])
        # the unnamed table sends no old values (Kafka Streams: not materialized), so an update
        # that does not match is a delete even where the row did not match before
        assert driver.read_output(OUT) == [("a", None), ("a", 20), ("a", 30), ("a", None), ("b", 50), ("b", None)]


def test_table_filter_not(builder: StreamsBuilder) -> None:
    builder.table("t", key_serde="str", value_serde="json").filter_not(lambda _k, v: v > 10).to_stream().to(OUT)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("t", [("a", 5), ("a", 20)])
        assert driver.read_output(OUT) == [("a", 5), ("a", None)]


def test_table_map_values_and_to_stream(builder: StreamsBuilder) -> None:
    table = builder.table("t", key_serde="str", value_serde="json")
    table.map_values(lambda v: v["name"], value_serde="str").to_stream().to(OUT)
    table.map_values(lambda k, v: f"{k}/{v['name']}", with_key=True, value_serde="str").to_stream().to("keyed")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("t", [("u1", {"name": "ann"}), ("u1", None)])
        assert driver.read_output(OUT) == [("u1", "ann"), ("u1", None)]
        assert driver.read_output("keyed") == [("u1", "u1/ann"), ("u1", None)]


def test_stream_to_table(builder: StreamsBuilder, source: Stream) -> None:
    source.to_table("latest").to_stream().to(OUT)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many(IN, [("a", 1), ("a", 2)])
        assert driver.read_output(OUT) == [("a", 1), ("a", 2)]
        assert driver.store("latest").all() == {"a": 2}


def region_totals(builder: StreamsBuilder) -> None:
    """Users per region and spend per region, from a table of user profiles."""
    users = builder.table("users", key_serde="str", value_serde="json", name="users")
    by_region = users.group_by(lambda _user, p: (p["region"], p), key_serde="str")
    by_region.count("users-per-region").to_stream().to("counts")
    (
        by_region.aggregate(lambda: 0, lambda _r, p, total: total + p["spend"],
                            lambda _r, p, total: total - p["spend"], "spend-per-region")
        .to_stream()
        .to("spend")
    )


def test_grouped_table_moves_users_between_regions(builder: StreamsBuilder) -> None:
    region_totals(builder)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("users", [
            ("ann", {"region": "eu", "spend": 10}),
            ("bob", {"region": "eu", "spend": 5}),
            ("cat", {"region": "us", "spend": 7}),
            ("ann", {"region": "us", "spend": 10}),   # ann moves
            ("bob", {"region": "eu", "spend": 6}),    # bob stays, spends more
            ("cat", None),                            # cat leaves
        ])
        assert driver.store("users-per-region").all() == {"eu": 1, "us": 1}
        assert driver.store("spend-per-region").all() == {"eu": 6, "us": 10}
        assert driver.read_latest("counts") == {"eu": 1, "us": 1}
        assert driver.read_latest("spend") == {"eu": 6, "us": 10}


def test_grouped_table_emits_subtraction_before_addition(builder: StreamsBuilder) -> None:
    region_totals(builder)
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("users", "ann", {"region": "eu", "spend": 1})
        driver.pipe("users", "ann", {"region": "us", "spend": 1})
        assert driver.read_output("counts") == [("eu", 1), ("eu", 0), ("us", 1)]


def test_grouped_table_reduce_with_subtractor(builder: StreamsBuilder) -> None:
    users = builder.table("users", key_serde="str", value_serde="json")
    (
        users.group_by(lambda _u, p: (p["team"], p["score"]), key_serde="str", value_serde="int")
        .reduce(lambda a, b: a + b, lambda a, b: a - b, "team-scores")
        .to_stream()
        .to(OUT)
    )
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("users", [("a", {"team": "x", "score": 3}), ("b", {"team": "x", "score": 4}),
                                   ("a", {"team": "y", "score": 3})])
        assert driver.store("team-scores").all() == {"x": 4, "y": 3}


def test_the_regions_app_keeps_totals_exact() -> None:
    from apps.regions import topology

    with TopologyTestDriver(topology) as driver:
        for user, region in [("u1", "eu"), ("u2", "eu"), ("u3", "us"), ("u1", "us"), ("u2", "apac")]:
            driver.pipe("user-profiles", user, {"name": user, "region": region})
        driver.pipe("user-profiles", "u3", None)
        assert driver.read_latest("users-per-region") == {"eu": 0, "us": 1, "apac": 1}
        assert driver.store("region-counts").all() == {"eu": 0, "us": 1, "apac": 1}


# -- known bugs (owner: DSL/processors) ------------------------------------------------------


def test_flat_map_yielding_non_pairs_goes_to_the_error_handler(builder: StreamsBuilder, source: Stream) -> None:
    source.flat_map(lambda _k, v: [v] if v < 0 else [("ok", v)]).to(OUT)
    with TopologyTestDriver(builder.build(), processing_error_handler="log_and_continue") as driver:
        driver.pipe_many(IN, [("a", -1), ("b", 2)])
        assert driver.read_output(OUT) == [("ok", 2)]


def test_split_with_async_predicates(builder: StreamsBuilder, source: Stream) -> None:
    async def is_big(_key: str, value: int) -> bool:
        return value > 10

    branches = source.split().branch(is_big, name="big").default_branch("small")
    branches["big"].to("big")
    branches["small"].to("small")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many(IN, [("a", 1), ("b", 50)])
        assert driver.read_output("big") == [("b", 50)]
        assert driver.read_output("small") == [("a", 1)]


def test_map_values_with_an_async_callable_object(source: Stream, run: Any) -> None:
    class Enrich:
        async def __call__(self, value: int) -> int:
            return value + 1

    source.map_values(Enrich()).to(OUT)
    assert run([("a", 1)]) == [("a", 2)]
