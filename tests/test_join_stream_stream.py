"""Windowed stream-stream joins through the test driver: windows, grace, unmatched records, null keys,
late records, self-joins, repartitioning, stores and batches (Kafka Streams' semantics)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from streamer import JoinWindows, StreamsBuilder
from streamer.errors import TopologyError
from streamer.testing import TopologyTestDriver
from streamer.topology.topology import Topology

WINDOWS = JoinWindows.of_time_difference_and_grace(10, 5)


def pair(left: Any, right: Any) -> list[Any]:
    return [left, right]


def topology(kind: str = "join", windows: JoinWindows = WINDOWS, *, rekey: bool = False) -> Topology:
    b = StreamsBuilder()
    left = b.stream("left", key_serde="str", value_serde="json")
    right = b.stream("right", key_serde="str", value_serde="json")
    if rekey:
        left = left.select_key(lambda k, v: v["id"]).map_values(lambda v: v["n"])
    getattr(left, kind)(right, pair, windows, name="j").to("out", key_serde="str", value_serde="json")
    return b.build()


def out(driver: TopologyTestDriver) -> list[tuple[Any, Any, int]]:
    return [(r.key, r.value, r.timestamp) for r in driver.read_records("out")]


# -- JoinWindows ------------------------------------------------------------------------------

def test_join_windows_bounds_and_retention() -> None:
    w = JoinWindows.of_time_difference_and_grace(timedelta(seconds=2), 500).before(100).after(0)
    assert (w.before_ms, w.after_ms, w.grace_ms, w.size_ms, w.retention_ms) == (100, 0, 500, 100, 600)
    assert JoinWindows.of_time_difference_with_no_grace(7) == JoinWindows(7, 7, 0)
    assert JoinWindows.of_time_difference_with_no_grace(10).before(-3).size_ms == 7  # an offset window


@pytest.mark.parametrize("make, message", [
    (lambda: JoinWindows.of_time_difference_with_no_grace(-1), "time_difference_ms must be at least 0"),
    (lambda: JoinWindows.of_time_difference_with_no_grace(5).after(-6), "Make before or after larger"),
    (lambda: JoinWindows.of_time_difference_and_grace(5, -1), "grace_ms must be at least 0"),
    (lambda: JoinWindows.of_time_difference_and_grace(5, 1.5), "milliseconds \\(int\\) or a timedelta"),
])
def test_join_windows_validation_says_what_to_fix(make: Any, message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        make()


def test_join_needs_join_windows() -> None:
    b = StreamsBuilder()
    left, right = b.stream("left"), b.stream("right")
    with pytest.raises(TopologyError, match="needs windows"):
        left.join(right, pair)
    with pytest.raises(TopologyError, match="takes JoinWindows"):
        left.join(right, pair, 10)  # type: ignore[arg-type]


# -- inner joins ------------------------------------------------------------------------------

def test_inner_join_within_window_both_ways_with_later_timestamp() -> None:
    with TopologyTestDriver(topology()) as driver:
        driver.pipe("left", "a", 1, timestamp=100)
        driver.pipe("right", "a", 2, timestamp=110)  # exactly at the window's edge
        driver.pipe("right", "a", 3, timestamp=111)  # one ms too late for the left record
        driver.pipe("right", "b", 4, timestamp=105)
        driver.pipe("left", "b", 5, timestamp=96)    # out of order, within grace: joins the earlier right one
        driver.pipe("left", "a", 6, timestamp=101)   # joins both right records of "a"
        assert out(driver) == [("a", [1, 2], 110), ("b", [5, 4], 105), ("a", [6, 2], 110), ("a", [6, 3], 111)]


def test_duplicates_at_one_time_all_join() -> None:
    with TopologyTestDriver(topology()) as driver:
        driver.pipe_many("left", [("a", 1, 50), ("a", 2, 50)])
        driver.pipe("right", "a", 3, timestamp=50)
        assert out(driver) == [("a", [1, 3], 50), ("a", [2, 3], 50)]


def test_asymmetric_window() -> None:
    """before(0): right records may only follow the left one, by up to ``after``."""
    with TopologyTestDriver(topology(windows=WINDOWS.before(0))) as driver:
        driver.pipe("left", "a", 1, timestamp=100)
        driver.pipe("right", "a", 2, timestamp=99)
        driver.pipe("right", "a", 3, timestamp=104)
        assert out(driver) == [("a", [1, 3], 104)]


def test_inner_join_drops_null_keys_values_and_late_records() -> None:
    with TopologyTestDriver(topology()) as driver:
        driver.pipe("left", None, 1, timestamp=10)
        driver.pipe("right", "a", None, timestamp=10)
        driver.pipe("right", "a", 2, timestamp=100)
        driver.pipe("left", "z", 3, timestamp=100)
        driver.pipe("left", "a", 4, timestamp=60)  # older than the left store keeps (before + after + grace = 25)
        assert out(driver) == []
        assert driver.dropped == {"j": 3}


# -- left and outer joins ---------------------------------------------------------------------

def test_left_join_emits_unmatched_only_once_its_window_closed() -> None:
    with TopologyTestDriver(topology("left_join")) as driver:
        driver.pipe("left", "a", 1, timestamp=100)
        driver.pipe("left", "b", 2, timestamp=101)
        driver.pipe("right", "a", 3, timestamp=112)  # too late for "a"'s window, but within grace
        driver.pipe("right", "a", 4, timestamp=108)  # matches: no (1, None) ever
        assert out(driver) == [("a", [1, 4], 108)]
        driver.pipe("left", "c", 5, timestamp=115)  # stream time 115 = 100 + 10 + 5: not closed yet
        assert out(driver) == []
        driver.pipe("left", "c", 6, timestamp=117)  # closes "b"'s window (101 + 10 + 5 < 117)
        assert out(driver) == [("b", [2, None], 101)]


def test_left_join_emits_a_late_unmatched_record_at_once_and_null_keys_joined_with_none() -> None:
    with TopologyTestDriver(topology("left_join")) as driver:
        driver.pipe("left", "x", 1, timestamp=200)
        driver.pipe("left", "a", 2, timestamp=150)   # its window ended before stream time: out at once
        driver.pipe("left", None, 3, timestamp=190)  # KIP-962: a null key is joined with None at once
        driver.pipe("right", None, 4, timestamp=190)  # the right side of a left join drops it
        assert out(driver) == [("a", [2, None], 150), (None, [3, None], 190)]
        assert driver.dropped == {"j": 1}


def test_outer_join_emits_both_sides_unmatched_in_time_order() -> None:
    with TopologyTestDriver(topology("outer_join")) as driver:
        driver.pipe("right", "r", 1, timestamp=100)
        driver.pipe("left", "l", 2, timestamp=100)
        driver.pipe("left", "m", 3, timestamp=101)
        driver.pipe("right", "m", 4, timestamp=103)
        driver.pipe("right", None, 5, timestamp=104)
        driver.pipe("left", "tick", 0, timestamp=200)
        assert out(driver) == [("m", [3, 4], 103), (None, [None, 5], 104),
                               ("r", [None, 1], 100), ("l", [2, None], 100)]


def test_outer_store_survives_batches_and_emits_once() -> None:
    """Within batches: a record waits in the outer store, is matched, and never comes out alone."""
    with TopologyTestDriver(topology("outer_join")) as driver:
        driver.pipe_batch("left", [("a", 1, 10), ("b", 2, 11)])
        driver.pipe_batch("right", [("a", 3, 12), ("tick", 0, 100)])
        assert out(driver) == [("a", [1, 3], 12), ("b", [2, None], 11)]


# -- self-joins, repartitioning, stores --------------------------------------------------------

def test_self_join_matches_kafka_streams_order() -> None:
    b = StreamsBuilder()
    s = b.stream("s", key_serde="str", value_serde="json")
    s.join(s, pair, WINDOWS).to("out", key_serde="str", value_serde="json")
    with TopologyTestDriver(b.build()) as driver:
        driver.pipe_batch("s", [("a", 1, 0), ("a", 2, 1)])
        # per record: the left side joins what the right store holds, then the right side the left store
        assert out(driver) == [("a", [1, 1], 0), ("a", [2, 1], 1), ("a", [1, 2], 1), ("a", [2, 2], 1)]


def test_rekeyed_input_is_repartitioned_and_both_sides_share_a_sub_topology() -> None:
    top = topology(rekey=True)
    assert [t.suffix for t in top.repartition_topics] == ["j-left-repartition"]
    join_sub = [s for s in top.subtopologies if any(n.name == "j" for n in s.nodes)]
    assert len(join_sub) == 1
    assert {s.name for s in join_sub[0].stores} == {"j-left-store", "j-right-store"}
    with TopologyTestDriver(top) as driver:
        driver.pipe("left", "x", {"id": "a", "n": 1}, timestamp=5)
        driver.pipe("right", "a", 2, timestamp=6)
        assert out(driver) == [("a", [1, 2], 6)]


def test_stores_keep_duplicates_with_retention_and_changelogs() -> None:
    top = topology("left_join", JoinWindows.of_time_difference_and_grace(10, 5).before(2))
    stores = {s.name: s for sub in top.subtopologies for s in sub.stores}
    left, outer = stores["j-left-store"], stores["j-outer-store"]
    assert (left.kind, left.retain_duplicates, left.timestamped, left.retention_ms, left.logged) == \
        ("window", True, True, 17, True)
    assert (outer.kind, outer.logged, outer.changelog_config()) == ("key_value", True, {"cleanup.policy": "compact"})
    assert "j-outer-store" not in {s.name for sub in topology().subtopologies for s in sub.stores}


def test_a_batch_gives_what_records_one_by_one_give() -> None:
    rows = [("a", 1, 10), ("b", 2, 12), ("c", 4, 9), ("a", 3, 11)]
    right = [("a", 6, 15), ("b", 7, 13), ("c", 8, 60)]
    results = []
    for batch in (True, False):
        with TopologyTestDriver(topology("outer_join")) as driver:
            if batch:
                driver.pipe_batch("left", rows)
                driver.pipe_batch("right", right)
            else:
                driver.pipe_many("left", rows)
                driver.pipe_many("right", right)
            results.append(out(driver))
    assert results[0] == results[1]
    assert ("a", [1, 6], 15) in results[0] and ("b", [2, 7], 13) in results[0]


def test_joiner_errors_go_to_the_handler() -> None:
    b = StreamsBuilder()
    left = b.stream("left", key_serde="str", value_serde="json")
    right = b.stream("right", key_serde="str", value_serde="json")
    left.join(right, lambda a, b: a // b, WINDOWS).to("out", key_serde="str", value_serde="json")
    with TopologyTestDriver(b.build(), processing_error_handler="log_and_continue") as driver:
        driver.pipe("left", "a", 1, timestamp=1)
        driver.pipe("left", "b", 4, timestamp=1)
        driver.pipe_batch("right", [("a", 0, 2), ("b", 2, 2)])
        assert out(driver) == [("b", 2, 2)]
