"""Page views per user per minute, and user sessions, over the cleaned clickstream.

    clickstream-views (key: user id, value: a normalised view event from apps.clickstream,
                       event time = its "ts" field, not the Kafka record's timestamp)
      --+--> 1-minute tumbling windows, 10 s grace, one final count per user and minute
        |      --> pageviews-per-minute (key: "user@window start", value: {"user", "start", "end", "views"})
        +--> sessions with a 30-minute inactivity gap (grace 1 minute), updated on every event
               --> user-sessions (key: "user@session start", value: {"user", "start", "end", "views",
                   "pages"}; a merged-away session gets a tombstone)

Windows close by event time: a minute's count comes out once an event 10 s past its
end arrived. ``--app-setting idle_close_ms=N`` also closes them after N ms of wall-clock
quiet (see docs/windows.md). Topic names come from app settings ``views``,
``per_minute`` and ``sessions``. Run it with ``streamer run apps.sessions:topology``.
"""

from __future__ import annotations

from typing import Any

from streamer import StreamsBuilder, app_setting
from streamer.windows import EmitStrategy, SessionWindows, TimeWindows, Windowed

MINUTE_MS = 60_000
SESSION_GAP_MS = 30 * MINUTE_MS


def event_time(_user: str, view: dict[str, Any], _record_timestamp: int) -> int:
    return int(view["ts"])


def new_session() -> dict[str, Any]:
    return {"views": 0, "pages": []}


def add_view(_user: str, view: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    """Count the view and remember each page once, in the order first seen."""
    page = f"{view['host']}{view['path']}"
    pages = session["pages"] if page in session["pages"] else [*session["pages"], page]
    return {"views": session["views"] + 1, "pages": pages}


def merge_sessions(_user: str, left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """An event that bridges two sessions joins them into one."""
    pages = left["pages"] + [page for page in right["pages"] if page not in left["pages"]]
    return {"views": left["views"] + right["views"], "pages": pages}


def per_window(window: Windowed, value: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return f"{window.key}@{window.start}", {"user": window.key, "start": window.start, "end": window.end, **value}


def build() -> StreamsBuilder:
    builder = StreamsBuilder()
    idle_close_ms = int(app_setting("idle_close_ms", "0"))
    views = builder.stream(app_setting("views", "clickstream-views"), key_serde="str", value_serde="json",
                           timestamp_extractor=event_time, name="views")
    by_user = views.group_by_key(name="views-by-user")

    per_minute = (by_user.windowed_by(TimeWindows.of_size_and_grace(MINUTE_MS, 10_000))
                  .emit_strategy(EmitStrategy.on_window_close()))
    if idle_close_ms:
        per_minute = per_minute.close_when_idle(idle_close_ms)
    (per_minute.count("views-per-minute")
        .to_stream(name="minute-counts")
        .map(lambda window, views: per_window(window, {"views": views}), name="minute-rows")
        .to(app_setting("per_minute", "pageviews-per-minute"), key_serde="str", value_serde="json"))

    (by_user.windowed_by(SessionWindows.of_inactivity_gap_and_grace(SESSION_GAP_MS, MINUTE_MS))
        .aggregate(new_session, add_view, merge_sessions, "user-sessions")
        .to_stream(name="session-updates")
        .map(lambda window, session: (f"{window.key}@{window.start}",
                                      None if session is None else per_window(window, session)[1]),
             name="session-rows")
        .to(app_setting("sessions", "user-sessions"), key_serde="str", value_serde="json"))
    return builder


topology = build().build()
