"""Sliding and session windows through the test driver.

The expected records are Kafka Streams' (4.4, TopologyTestDriver, cache off) for the same
inputs, taken from the conformance oracle and checked by hand.
"""

from __future__ import annotations

from typing import Any, Callable

from streamer import EmitStrategy, SessionWindows, SlidingWindows, StreamsBuilder, Suppressed, Windowed
from streamer.testing import TopologyTestDriver

ON_CLOSE = EmitStrategy.on_window_close()


def _run(make: Callable[[Any], Any], rows: list[tuple[str, Any, int]], *, batch: bool = False,
         **config: Any) -> tuple[list[tuple[str, int, int, Any, int]], TopologyTestDriver]:
    """(key, start, end, value, timestamp) of every output record; the driver stays open for store reads."""
    builder = StreamsBuilder()
    make(builder.stream("in", key_serde="str", value_serde="json").group_by_key()).to_stream().to("out")
    driver = TopologyTestDriver(builder.build(), **config)
    if batch:
        driver.pipe_batch("in", rows)
    else:
        driver.pipe_many("in", rows)
    out = [(r.key.key, r.key.start, r.key.end, r.value, r.timestamp)
           for r in driver.read_records("out", value_serde="json")]
    return out, driver


SLIDING = SlidingWindows.of_time_difference_with_no_grace(10)


def test_a_record_late_for_its_own_window_still_updates_the_later_windows_that_are_open() -> None:
    """At stream time 115 (no grace) the record at 106 is too late for its own window [96, 106] and
    for [101, 111], but [105, 115] and [106, 116] are open: both count it, and its right window
    [107, 117] is created from [106, 116]."""
    out, driver = _run(lambda g: g.windowed_by(SLIDING).count("counts"),
                       [("a", 1, 100), ("a", 1, 105), ("a", 1, 115), ("a", 1, 106)])
    assert out == [
        ("a", 90, 100, 1, 100),
        ("a", 101, 111, 1, 105), ("a", 95, 105, 2, 105),
        ("a", 106, 116, 1, 115), ("a", 105, 115, 2, 115),
        ("a", 106, 116, 2, 115), ("a", 105, 115, 3, 115), ("a", 107, 117, 1, 115),
    ]
    assert driver.dropped == {}  # partly late is not dropped
    assert driver.store("counts").fetch("a", 100, 120) == [(101, 1), (105, 3), (106, 2), (107, 1)]
    driver.close()


def test_records_before_the_time_difference_share_the_window_from_zero() -> None:
    out, driver = _run(lambda g: g.windowed_by(SLIDING).count("counts"),
                       [("a", 1, 3), ("a", 1, 7), ("a", 1, 5), ("a", 1, 12), ("a", 1, 1)])
    assert out == [
        ("a", 0, 10, 1, 3),
        ("a", 4, 14, 1, 7), ("a", 0, 10, 2, 7),
        ("a", 4, 14, 2, 7), ("a", 6, 16, 1, 7), ("a", 0, 10, 3, 7),
        ("a", 6, 16, 2, 12), ("a", 4, 14, 3, 12), ("a", 8, 18, 1, 12), ("a", 2, 12, 4, 12),
    ]
    assert driver.dropped == {"counts-count": 1}  # 1 + 10 < stream time 12: every window closed
    driver.close()


SLIDING_ROWS = [("a", 1, 100), ("a", 1, 105), ("a", 1, 115), ("a", 1, 106), ("b", 1, 130), ("a", 1, 140)]
SLIDING_FINALS = [
    ("a", 90, 100, 1, 100), ("a", 95, 105, 2, 105), ("a", 101, 111, 1, 105),
    ("a", 105, 115, 3, 115), ("a", 106, 116, 2, 115), ("a", 107, 117, 1, 115), ("b", 120, 130, 1, 130),
]


def test_sliding_emit_on_close_and_suppress_give_each_final_result_once() -> None:
    on_close = lambda g: g.windowed_by(SLIDING).emit_strategy(ON_CLOSE).count("counts")  # noqa: E731
    for batch in (False, True):
        out, driver = _run(on_close, SLIDING_ROWS, batch=batch)
        assert out == SLIDING_FINALS
        driver.close()
    suppressed = lambda g: g.windowed_by(SLIDING).count("c").suppress(Suppressed.until_window_closes())  # noqa: E731
    out, driver = _run(suppressed, SLIDING_ROWS)
    # Suppress orders by window end, then windowed key bytes. At stream time 115 the window
    # [105, 115] still takes the record at 106, so it is not final yet (Kafka Streams'
    # suppress emits it there with count 2, and again with 3).
    assert out == [("a", 90, 100, 1, 100), ("a", 95, 105, 2, 105), ("a", 101, 111, 1, 105),
                   ("a", 105, 115, 3, 115), ("a", 106, 116, 2, 115), ("a", 107, 117, 1, 115),
                   ("b", 120, 130, 1, 130)]
    driver.close()


SESSIONS = SessionWindows.of_inactivity_gap_and_grace(5, 2)


def test_sessions_merge_and_delete_the_sessions_they_replace() -> None:
    out, driver = _run(lambda g: g.windowed_by(SESSIONS).count("sessions"),
                       [("a", 1, 1), ("a", 1, 10), ("a", 1, 5), ("a", 1, 30), ("a", 1, 12), ("a", 1, 22)])
    assert out == [
        ("a", 1, 1, 1, 1),
        ("a", 10, 10, 1, 10),
        ("a", 10, 10, None, 10), ("a", 5, 10, 2, 10),  # [1, 1] had expired: 5 joins only [10, 10]
        ("a", 30, 30, 1, 30),
    ]
    assert driver.dropped == {"sessions-count": 2}  # 12 and 22: sessions ending before 30 - 2 - 5 closed
    view = driver.store("sessions")
    assert view.fetch("a") == [(Windowed("a", 30, 30), 1)]
    driver.close()


def test_session_aggregate_uses_the_merger_when_a_record_bridges_two_sessions() -> None:
    def make(g: Any) -> Any:
        return g.windowed_by(SessionWindows.of_inactivity_gap_and_grace(5, 10)).aggregate(
            lambda: "", lambda key, value, agg: agg + str(value), lambda key, one, two: one + two, "s")

    out, driver = _run(make, [("a", 1, 1), ("a", 2, 9), ("a", 3, 5)])
    assert out == [
        ("a", 1, 1, "1", 1), ("a", 9, 9, "2", 9),
        ("a", 1, 1, None, 1), ("a", 9, 9, None, 9), ("a", 1, 9, "123", 9),
    ]
    assert driver.store("s").find_sessions("a", 0, 100) == [(Windowed("a", 1, 9), "123")]
    driver.close()


SESSION_ROWS = [("a", 1, 1), ("b", 1, 2), ("a", 1, 4), ("a", 1, 20), ("b", 1, 14), ("a", 1, 12), ("c", 1, 40)]


def test_session_emit_on_close_orders_finals_by_session_end_and_uses_it_as_timestamp() -> None:
    no_grace = SessionWindows.of_inactivity_gap_with_no_grace(5)
    out, driver = _run(lambda g: g.windowed_by(no_grace).emit_strategy(ON_CLOSE).count("s"), SESSION_ROWS)
    assert out == [("b", 2, 2, 1, 2), ("a", 1, 4, 2, 4), ("a", 20, 20, 1, 20)]
    driver.close()


def test_session_suppress_drops_the_deletions_of_merged_sessions() -> None:
    def make(g: Any) -> Any:
        return g.windowed_by(SessionWindows.of_inactivity_gap_with_no_grace(5)).count("s").suppress(
            Suppressed.until_window_closes())

    out, driver = _run(make, [("a", 1, 1), ("a", 1, 4), ("z", 1, 20)])
    assert out == [("a", 1, 4, 2, 4)]  # [1, 1]'s deletion is not forwarded
    driver.close()


def test_session_suppress_waits_until_the_session_can_no_longer_change() -> None:
    """At stream time 15 (gap 5, no grace) the session [10, 10] still takes a record at 8, which
    makes it [8, 10]; only that session is final (Kafka Streams' suppress would also emit [10, 10])."""
    def make(g: Any) -> Any:
        return g.windowed_by(SessionWindows.of_inactivity_gap_with_no_grace(5)).count("s").suppress(
            Suppressed.until_window_closes())

    out, driver = _run(make, [("a", 1, 10), ("b", 1, 15), ("a", 1, 8), ("z", 1, 30)])
    assert out == [("a", 8, 10, 2, 10), ("b", 15, 15, 1, 15)]
    driver.close()
