"""Table-table joins in the test driver: tables of joined rows, kept exact by both sides' updates."""

from __future__ import annotations

import random
from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.dsl.table import Table
from streamer.testing import TopologyTestDriver


def _tables(builder: StreamsBuilder) -> tuple[Table, Table]:
    left = builder.table("left", key_serde="str", value_serde="json", name="left")
    right = builder.table("right", key_serde="str", value_serde="json", name="right")
    return left, right


def _pair(left: Any, right: Any) -> list[Any]:
    return [left, right]


#: One row's lifetime: left only, both, right updated, an older left update, left deleted, left
#: again, right deleted, a delete of a key never written, and the last row deleted.
_SCENARIO = [("left", "k", 1, 10), ("right", "k", 2, 11), ("right", "k", 3, 12), ("left", "k", 4, 5),
             ("left", "k", None, 13), ("left", "k", 6, 14), ("right", "k", None, 15), ("right", "x", None, 16),
             ("left", "k", None, 17)]

_EXPECTED = {
    "inner": [([1, 2], 11), ([1, 3], 12), ([4, 3], 12), (None, 13), ([6, 3], 14), (None, 15)],
    "left": [([1, None], 10), ([1, 2], 11), ([1, 3], 12), ([4, 3], 12), (None, 13), ([6, 3], 14), ([6, None], 15),
             (None, 17)],
    "outer": [([1, None], 10), ([1, 2], 11), ([1, 3], 12), ([4, 3], 12), ([None, 3], 13), ([6, 3], 14),
              ([6, None], 15), (None, 17)],
}


@pytest.mark.parametrize("kind", ["inner", "left", "outer"])
def test_updates_and_deletes_of_either_side_with_the_later_timestamp(kind: str) -> None:
    builder = StreamsBuilder()
    left, right = _tables(builder)
    joined = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[kind](right, _pair)
    joined.to_stream().to("out")
    with TopologyTestDriver(builder.build()) as driver:
        for topic, key, value, ts in _SCENARIO:
            driver.pipe(topic, key, value, timestamp=ts)
        assert [(r.value, r.timestamp) for r in driver.read_records("out")] == _EXPECTED[kind]


def test_changes_carry_the_old_joined_value() -> None:
    builder = StreamsBuilder()
    left, right = _tables(builder)
    joined = left.left_join(right, _pair)
    joined.group_by(lambda k, v: ("all", v)).aggregate(
        lambda: [], lambda k, v, agg: agg + [("+", v)], lambda k, v, agg: agg + [("-", v)], "log")
    with TopologyTestDriver(builder.build()) as driver:
        for topic, key, value, ts in _SCENARIO[:4]:
            driver.pipe(topic, key, value, timestamp=ts)
        log = driver.store("log").get("all")
    assert log == [["+", [1, None]], ["-", [1, None]], ["+", [1, 2]], ["-", [1, 2]], ["+", [1, 3]],
                   ["-", [1, 3]], ["+", [4, 3]]]


@pytest.mark.parametrize("kind", ["inner", "left", "outer"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_downstream_aggregate_with_subtractor_stays_exact(kind: str, seed: int) -> None:
    builder = StreamsBuilder()
    left, right = _tables(builder)
    joiner = lambda a, b: (a or 0) * 100 + (b or 0)  # noqa: E731
    joined = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[kind](right, joiner)
    joined.group_by(lambda k, v: (f"g{v % 3}", v), key_serde="str").aggregate(
        lambda: 0, lambda k, v, agg: agg + v, lambda k, v, agg: agg - v, "sums")
    rng = random.Random(seed)
    rows: dict[str, dict[str, int]] = {"left": {}, "right": {}}
    with TopologyTestDriver(builder.build()) as driver:
        for _ in range(300):
            topic, key = rng.choice(("left", "right")), f"k{rng.randrange(8)}"
            value = None if rng.random() < 0.3 else rng.randrange(1, 50)
            if value is None:
                rows[topic].pop(key, None)
            else:
                rows[topic][key] = value
            driver.pipe(topic, key, value, timestamp=rng.randrange(1000))
        sums = {key: value for key, value in driver.store("sums").all().items() if value != 0}
    expected: dict[str, int] = {}
    for key in rows["left"].keys() | rows["right"].keys():
        a, b = rows["left"].get(key), rows["right"].get(key)
        if (kind == "inner" and (a is None or b is None)) or (kind == "left" and a is None):
            continue
        value = joiner(a, b)
        expected[f"g{value % 3}"] = expected.get(f"g{value % 3}", 0) + value
    assert sums == {g: v for g, v in expected.items() if v != 0}


def test_a_filter_below_a_join_only_deletes_rows_that_matched() -> None:
    builder = StreamsBuilder()
    left, right = _tables(builder)
    left.outer_join(right, _pair).filter(lambda k, v: v[0] is not None).to_stream().to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("right", "k", 1, timestamp=1)  # [None, 1]: no match, no output (old values known)
        driver.pipe("left", "k", 2, timestamp=2)
        driver.pipe("left", "k", None, timestamp=3)  # leaves the filter: a delete
        driver.pipe("right", "k", 5, timestamp=4)  # still no match: nothing
        assert driver.read_output("out") == [("k", [2, 1]), ("k", None)]


def test_derived_tables_on_both_sides_and_a_join_of_a_join() -> None:
    builder = StreamsBuilder()
    left, right = _tables(builder)
    third = builder.table("third", key_serde="str", value_serde="json", name="third")
    evens = left.filter(lambda k, v: v % 2 == 0)
    tens = right.map_values(lambda v: v * 10)
    evens.join(tens, _pair).left_join(third, _pair).to_stream().to("out")
    topology = builder.build()
    assert sorted(s.name for s in topology.stores()) == ["left", "right", "third"]
    with TopologyTestDriver(topology) as driver:
        driver.pipe("left", "k", 2, timestamp=1)
        driver.pipe("right", "k", 3, timestamp=2)
        driver.pipe("third", "k", "t", timestamp=3)
        driver.pipe("left", "k", 5, timestamp=4)  # leaves the filter: the join's row is deleted
        driver.pipe("left", "k", 4, timestamp=5)
        assert driver.read_output("out") == [("k", [[2, 30], None]), ("k", [[2, 30], "t"]), ("k", None),
                                             ("k", [[4, 30], "t"])]
