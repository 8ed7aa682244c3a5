"""The page-view and session app, in the test driver: windows close by event time."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from apps.sessions import MINUTE_MS, SESSION_GAP_MS, topology
from streamer.testing import TopologyTestDriver

VIEWS, PER_MINUTE, SESSIONS = "clickstream-views", "pageviews-per-minute", "user-sessions"
T0 = 1_700_000_040_000 // MINUTE_MS * MINUTE_MS  # a minute boundary


def view(user: str, ts: int, path: str = "/p/1") -> tuple[str, dict[str, Any], int]:
    event = {"user_id": user, "event_type": "view", "host": "shop.example", "path": path, "ts": ts}
    return user, event, 0  # the Kafka timestamp is ignored: event time comes from "ts"


@pytest.fixture
def driver() -> Iterator[TopologyTestDriver]:
    with TopologyTestDriver(topology, application_id="sessions") as driver:
        yield driver


def test_one_final_count_per_user_and_minute_once_the_grace_passed(driver: TopologyTestDriver) -> None:
    driver.pipe_many(VIEWS, [view("ann", T0 + 1_000), view("bob", T0 + 2_000), view("ann", T0 + 59_000)])
    assert driver.read_output(PER_MINUTE) == []  # the minute is still open
    driver.pipe_many(VIEWS, [view("ann", T0 + MINUTE_MS + 5_000), view("bob", T0 + 55_000)])  # late but in grace
    assert driver.read_output(PER_MINUTE) == []
    driver.pipe_many(VIEWS, [view("ann", T0 + MINUTE_MS + 10_000)])  # stream time reaches end + grace
    rows = dict(driver.read_output(PER_MINUTE))
    assert rows == {
        f"ann@{T0}": {"user": "ann", "start": T0, "end": T0 + MINUTE_MS, "views": 2},
        f"bob@{T0}": {"user": "bob", "start": T0, "end": T0 + MINUTE_MS, "views": 2},
    }


def test_a_view_after_its_minute_closed_is_dropped(driver: TopologyTestDriver) -> None:
    driver.pipe_many(VIEWS, [view("ann", T0 + 1_000), view("ann", T0 + 2 * MINUTE_MS)])
    assert [key for key, _ in driver.read_output(PER_MINUTE)] == [f"ann@{T0}"]
    driver.pipe_many(VIEWS, [view("ann", T0 + 30_000)])  # its minute closed 70 s of stream time ago
    driver.pipe_many(VIEWS, [view("ann", T0 + 4 * MINUTE_MS)])
    assert [value["views"] for _, value in driver.read_output(PER_MINUTE)] == [1]  # the minute at T0 + 2 min


def test_sessions_split_on_a_30_minute_gap_and_merge_when_bridged(driver: TopologyTestDriver) -> None:
    first = T0
    far = first + 10 * MINUTE_MS + SESSION_GAP_MS + 1  # just over the gap; the first session is still open
    driver.pipe_many(VIEWS, [view("ann", first, "/a"), view("ann", first + 10 * MINUTE_MS, "/b")])
    driver.pipe_many(VIEWS, [view("ann", far, "/c")])
    latest = driver.read_latest(SESSIONS)
    assert latest == {
        f"ann@{first}": {"user": "ann", "start": first, "end": first + 10 * MINUTE_MS, "views": 2,
                         "pages": ["shop.example/a", "shop.example/b"]},
        f"ann@{far}": {"user": "ann", "start": far, "end": far, "views": 1, "pages": ["shop.example/c"]},
    }
    bridge = first + 10 * MINUTE_MS + SESSION_GAP_MS - 1  # within the gap of both sessions
    driver.pipe_many(VIEWS, [view("ann", bridge, "/a")])
    assert driver.read_latest(SESSIONS) == {
        f"ann@{first}": {"user": "ann", "start": first, "end": far, "views": 4,
                         "pages": ["shop.example/a", "shop.example/b", "shop.example/c"]},
    }


def test_idle_close_emits_the_last_minute_without_new_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.sessions import build

    monkeypatch.setenv("STREAMER_APP_IDLE_CLOSE_MS", "30000")
    with TopologyTestDriver(build().build(), application_id="sessions-idle") as driver:
        driver.pipe_many(VIEWS, [view("ann", T0 + 1_000)])
        driver.advance_wall_clock(29_000)
        assert driver.read_output(PER_MINUTE) == []  # not idle long enough yet
        driver.advance_wall_clock(100_000)  # idle: stream time follows the wall clock past end + grace
        assert driver.read_output(PER_MINUTE) == [
            (f"ann@{T0}", {"user": "ann", "start": T0, "end": T0 + MINUTE_MS, "views": 1})]
