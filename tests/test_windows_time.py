"""Tumbling and hopping windows through the test driver: updates, grace, emit on close, suppress, idle close."""

from __future__ import annotations

from typing import Any, Callable

from streamer import EmitStrategy, StreamsBuilder, Suppressed, TimeWindows, Windowed
from streamer.testing import TopologyTestDriver

Rows = list[tuple[str, Any, int]]


def _driver(make: Callable[[Any], Any], **config: Any) -> TopologyTestDriver:
    """``make(grouped stream)`` returns a windowed table, written to topic "out"."""
    builder = StreamsBuilder()
    grouped = builder.stream("in", key_serde="str", value_serde="json").group_by_key()
    make(grouped).to_stream().to("out")
    return TopologyTestDriver(builder.build(), **config)


def _out(driver: TopologyTestDriver) -> list[tuple[Windowed, Any, int]]:
    return [(r.key, r.value, r.timestamp) for r in driver.read_records("out", value_serde="json")]


def W(key: str, start: int, end: int) -> Windowed:  # noqa: N802
    return Windowed(key, start, end)


TUMBLING = TimeWindows.of_size_and_grace(10, 5)


def test_tumbling_count_updates_carry_the_latest_timestamp_of_the_window() -> None:
    with _driver(lambda g: g.windowed_by(TUMBLING).count("counts")) as driver:
        driver.pipe_many("in", [("a", 1, 3), ("a", 1, 8), ("a", 1, 5), ("b", 1, 12), ("a", 1, 10)])
        assert _out(driver) == [
            (W("a", 0, 10), 1, 3),
            (W("a", 0, 10), 2, 8),
            (W("a", 0, 10), 3, 8),  # an earlier record keeps the window's latest timestamp
            (W("b", 10, 20), 1, 12),
            (W("a", 10, 20), 1, 10),  # the end is exclusive: 10 starts the next window
        ]


def test_a_record_for_a_closed_window_is_dropped_counted_and_dead_lettered() -> None:
    make = lambda g: g.windowed_by(TUMBLING).count("counts")  # noqa: E731
    with _driver(make, processing_error_handler="dead_letter") as driver:
        driver.pipe_many("in", [("a", 1, 3), ("a", 1, 14), ("a", 1, 9), ("a", 1, 15), ("a", 1, 9)])
        assert _out(driver) == [(W("a", 0, 10), 1, 3), (W("a", 10, 20), 1, 14), (W("a", 0, 10), 2, 9),
                                (W("a", 10, 20), 2, 15)]
        # at stream time 15 the window [0, 10) has closed: 10 + grace 5 <= 15
        assert driver.dropped == {"counts-count": 1}
        dead = driver.read_records(driver.config.effective_dead_letter_topic)
        assert len(dead) == 1 and dead[0].timestamp == 9
        reason = dict(dead[0].headers or [])["streamer.dropped.reason"].decode()
        assert reason.startswith("late: every window of timestamp 9 closed (stream time 15")


def test_hopping_windows_update_the_open_ones_of_a_partly_late_record() -> None:
    hopping = TimeWindows.of_size_and_grace(10, 0).advance_by(5)
    with _driver(lambda g: g.windowed_by(hopping).count("counts")) as driver:
        driver.pipe_many("in", [("a", 1, 7), ("a", 1, 10), ("a", 1, 8)])
        assert _out(driver) == [
            (W("a", 0, 10), 1, 7), (W("a", 5, 15), 1, 7),
            (W("a", 5, 15), 2, 10), (W("a", 10, 20), 1, 10),
            (W("a", 5, 15), 3, 10),  # [0, 10) closed at stream time 10; [5, 15) is open
        ]
        assert driver.dropped == {}


def test_reduce_and_aggregate_per_window() -> None:
    with _driver(lambda g: g.windowed_by(TUMBLING).reduce(lambda agg, v: agg + v, "sums")) as driver:
        driver.pipe_many("in", [("a", 2, 1), ("a", 3, 2), ("a", 4, 11)])
        assert [v for _, v, _ in _out(driver)] == [2, 5, 4]
    make = lambda g: g.windowed_by(TUMBLING).aggregate(list, lambda k, v, agg: [*agg, v], "lists")  # noqa: E731
    with _driver(make) as driver:
        driver.pipe_many("in", [("a", 2, 1), ("a", 3, 2)])
        assert [v for _, v, _ in _out(driver)] == [[2], [2, 3]]


ROWS: Rows = [("b", 1, 1), ("a", 1, 2), ("a", 1, 12), ("b", 1, 4), ("c", 1, 13), ("a", 1, 16), ("a", 1, 31)]
#: (window, count, timestamp) of every window closed by stream time 31 with grace 5, by start then key
FINALS = [(W("a", 0, 10), 1, 2), (W("b", 0, 10), 2, 4), (W("a", 10, 20), 2, 16), (W("c", 10, 20), 1, 13)]


def test_emit_on_window_close_sends_one_final_result_per_window_in_start_then_key_order() -> None:
    on_close = lambda g: g.windowed_by(TUMBLING).emit_strategy(EmitStrategy.on_window_close()).count("c")  # noqa: E731
    with _driver(on_close) as driver:
        driver.pipe_many("in", ROWS[:-1])
        assert _out(driver) == [(W("a", 0, 10), 1, 2), (W("b", 0, 10), 2, 4)]  # closed at stream time 16
        driver.pipe_many("in", ROWS[-1:])
        assert _out(driver) == FINALS[2:]
        # retention is size + grace (+ 1 ms on close): at window start 30 the ones before 15 expired
        assert driver.store("c").fetch("a", 0, 30) == [(30, 1)]


def test_emit_on_window_close_is_the_same_when_records_come_in_one_batch() -> None:
    on_close = lambda g: g.windowed_by(TUMBLING).emit_strategy(EmitStrategy.on_window_close()).count("c")  # noqa: E731
    with _driver(on_close) as driver:
        driver.pipe_batch("in", ROWS)
        assert _out(driver) == FINALS


def test_suppress_until_window_closes_forwards_each_final_result_once() -> None:
    suppressed = lambda g: g.windowed_by(TUMBLING).count("c").suppress(Suppressed.until_window_closes())  # noqa: E731
    with _driver(suppressed) as driver:
        driver.pipe_many("in", ROWS)
        assert _out(driver) == FINALS
        driver.pipe("in", "a", 1, 5)  # late: dropped by the aggregation, nothing reaches the buffer
        assert _out(driver) == []


def test_suppress_drops_deletions() -> None:
    """A reduce to None deletes its window; the suppressed table forwards nothing for it."""
    def make(g: Any) -> Any:
        return g.windowed_by(TUMBLING).reduce(lambda agg, v: None if v == 0 else agg + v, "sums").suppress(
            Suppressed.until_window_closes("final"))

    with _driver(make) as driver:
        driver.pipe_many("in", [("a", 1, 1), ("a", 0, 2), ("b", 2, 3), ("z", 0, 40)])
        assert _out(driver) == [(W("b", 0, 10), 2, 3)]


def test_windowed_keys_are_written_in_kafka_streams_time_windowed_layout() -> None:
    with _driver(lambda g: g.windowed_by(TUMBLING).count("counts")) as driver:
        driver.pipe("in", "a", 1, 12)
        raw = driver.read_records("out", key_serde="bytes", value_serde="bytes")
        assert raw[0].key == b"a" + (10).to_bytes(8, "big")


def test_window_store_reads_through_the_driver() -> None:
    with _driver(lambda g: g.windowed_by(TUMBLING).count("counts", retention_ms=100)) as driver:
        driver.pipe_many("in", [("a", 1, 3), ("a", 1, 8), ("a", 1, 15), ("b", 1, 21)])
        view = driver.store("counts")
        assert view.fetch("a", 0, 100) == [(0, 2), (10, 1)]
        assert view.fetch("a", 0, 100, backward=True) == [(10, 1), (0, 2)]
        assert view.get("a", 10) == 1 and view.get("a", 20) is None
        assert view.get_with_timestamp("a", 0) == (2, 8)
        assert view.fetch_all(10, 20) == [("a", 10, 1), ("b", 20, 1)]


def test_close_when_idle_emits_final_results_without_new_input() -> None:
    def make(g: Any) -> Any:
        windowed = g.windowed_by(TimeWindows.of_size_and_grace(10_000, 1_000))
        return windowed.emit_strategy(EmitStrategy.on_window_close()).close_when_idle(5_000).count("c")

    with _driver(make) as driver:
        driver.pipe_many("in", [("a", 1, 1_000), ("a", 1, 4_000)])  # at wall-clock time 0
        driver.advance_wall_clock(4_999)
        assert _out(driver) == []  # not idle long enough
        driver.advance_wall_clock(1_000)  # idle: stream time 4 000 + 5 999; [0, 10 000) closes at 11 000
        assert _out(driver) == []
        driver.advance_wall_clock(1_001)
        assert _out(driver) == [(W("a", 0, 10_000), 2, 4_000)]
        driver.pipe("in", "a", 1, 9_000)  # stream time moved past the window's close: late
        assert _out(driver) == [] and driver.dropped == {"c-count": 1}
        driver.pipe("in", "a", 1, 12_000)  # at wall-clock time 7 000: resets the idle clock
        driver.advance_wall_clock(8_999)
        assert _out(driver) == []  # stream time 12 000 + 8 999; [10 000, 20 000) closes at 21 000
        driver.advance_wall_clock(1_000)
        assert _out(driver) == [(W("a", 10_000, 20_000), 1, 12_000)]


def test_close_when_idle_on_suppress() -> None:
    def make(g: Any) -> Any:
        table = g.windowed_by(TimeWindows.of_size_with_no_grace(10)).count("c")
        return table.suppress(Suppressed.until_window_closes().close_when_idle(100))

    with _driver(make) as driver:
        driver.pipe("in", "a", 1, 5)
        driver.advance_wall_clock(99)
        assert _out(driver) == []
        # idle checks run every idle_ms / 10: the next one (at 109 ms) finds 109 ms of idleness,
        # so stream time moves to 5 + 109, past the window's end
        driver.advance_wall_clock(10)
        assert _out(driver) == [(W("a", 0, 10), 1, 5)]
