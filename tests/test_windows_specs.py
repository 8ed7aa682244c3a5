"""Window specifications: the windows a record falls into, and arguments rejected with what to fix."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from streamer import EmitStrategy, SessionWindows, SlidingWindows, StreamsBuilder, Suppressed, TimeWindows
from streamer.errors import TopologyError


def test_tumbling_windows_start_at_multiples_of_the_size() -> None:
    windows = TimeWindows.of_size_and_grace(10, 3)
    assert (windows.size_ms, windows.advance_ms, windows.grace_ms) == (10, 10, 3)
    assert list(windows.window_starts(0)) == [0]
    assert list(windows.window_starts(19)) == [10]
    assert list(windows.window_starts(20)) == [20]
    assert TimeWindows.of_size_with_no_grace(10).grace_ms == 0


def test_hopping_windows_hold_a_record_in_every_window_that_overlaps_it() -> None:
    windows = TimeWindows.of_size_and_grace(10, 0).advance_by(3)
    assert list(windows.window_starts(10)) == [3, 6, 9]
    assert list(windows.window_starts(4)) == [0, 3]  # no negative starts


def test_durations_may_be_timedeltas() -> None:
    windows = TimeWindows.of_size_and_grace(timedelta(seconds=10), timedelta(milliseconds=500))
    assert (windows.size_ms, windows.grace_ms) == (10_000, 500)
    assert SessionWindows.of_inactivity_gap_with_no_grace(timedelta(minutes=30)).gap_ms == 1_800_000


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TimeWindows.of_size_and_grace(0, 0), "size_ms must be positive"),
        (lambda: TimeWindows.of_size_and_grace(10, -1), "grace_ms must be at least 0 ms"),
        (lambda: TimeWindows.of_size_and_grace(10.5, 0), "milliseconds (int) or a timedelta"),
        (lambda: TimeWindows.of_size_and_grace(True, 0), "milliseconds (int) or a timedelta"),
        (lambda: TimeWindows.of_size_and_grace(timedelta(microseconds=1500), 0), "whole milliseconds"),
        (lambda: TimeWindows.of_size_with_no_grace(10).advance_by(11), "must not exceed the window size"),
        (lambda: TimeWindows.of_size_with_no_grace(10).advance_by(0), "advance_ms must be positive"),
        (lambda: SlidingWindows.of_time_difference_and_grace(0, 0), "time_difference_ms must be positive"),
        (lambda: SlidingWindows.of_time_difference_with_no_grace(-5), "time_difference_ms must be positive"),
        (lambda: SessionWindows.of_inactivity_gap_and_grace(0, 1), "gap_ms must be positive"),
        (lambda: SessionWindows.of_inactivity_gap_and_grace(5, -1), "grace_ms must be at least 0 ms"),
        (lambda: Suppressed.until_window_closes().close_when_idle(0), "idle_ms must be positive"),
    ],
)
def test_bad_arguments_say_what_to_fix(make: Any, message: str) -> None:
    with pytest.raises(TopologyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_retention_defaults_to_what_a_window_needs_until_it_closes() -> None:
    assert TimeWindows.of_size_and_grace(10, 3).default_retention_ms == 13
    assert SlidingWindows.of_time_difference_and_grace(10, 3).default_retention_ms == 23
    assert SessionWindows.of_inactivity_gap_and_grace(10, 3).default_retention_ms == 13


def _grouped() -> Any:
    return StreamsBuilder().stream("in", key_serde="str", value_serde="json").group_by_key()


def test_retention_shorter_than_a_window_needs_is_rejected() -> None:
    windowed = _grouped().windowed_by(TimeWindows.of_size_and_grace(10, 3))
    with pytest.raises(TopologyError, match=r"retention_ms \(12\) must be at least 13 ms"):
        windowed.count(retention_ms=12)


def test_windowed_by_takes_window_specs_only() -> None:
    with pytest.raises(TopologyError, match="windowed_by\\(\\) takes TimeWindows, SlidingWindows or SessionWindows"):
        _grouped().windowed_by(10)


def test_emit_strategy_takes_an_emit_strategy() -> None:
    windowed = _grouped().windowed_by(TimeWindows.of_size_with_no_grace(10))
    with pytest.raises(TopologyError, match="EmitStrategy.on_window_close"):
        windowed.emit_strategy("close")
    assert EmitStrategy.on_window_close().on_close and not EmitStrategy.on_window_update().on_close


def test_suppress_needs_a_windowed_table() -> None:
    table = _grouped().count()
    with pytest.raises(TopologyError, match="needs a windowed table"):
        table.suppress(Suppressed.until_window_closes())
    windowed = _grouped().windowed_by(TimeWindows.of_size_with_no_grace(10)).count()
    with pytest.raises(TopologyError, match="takes Suppressed.until_window_closes"):
        windowed.suppress("until closed")
