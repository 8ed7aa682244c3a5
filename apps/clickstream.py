"""Clickstream cleaner and router.

Reads raw web events (JSON, keyed by user id), drops bots and malformed events,
normalises what is left and routes each event type to its own topic:

    clickstream-events --> drop bots --> drop malformed --> normalise --+--> clickstream-clicks
                                                                        +--> clickstream-views
                                                                        +--> clickstream-purchases
                                                                        +--> clickstream-other

Topic names come from app settings (``--app-setting input=...`` or STREAMER_APP_INPUT ...).
Run it with ``streamer run apps.clickstream:topology``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from streamer import StreamsBuilder, app_setting

ROUTES = {"click": "clicks", "view": "views", "purchase": "purchases", "other": "other"}


def topics() -> tuple[str, dict[str, str]]:
    """The input topic and the output topic of each route, from app settings at call time."""
    outputs = {route: app_setting(setting, f"clickstream-{setting}") for route, setting in ROUTES.items()}
    return app_setting("input", "clickstream-events"), outputs

BOT_MARKERS = ("bot", "crawler", "spider", "headless")
REQUIRED = ("user_id", "event_type", "url", "ts")


def is_bot(user_id: str, event: dict[str, Any]) -> bool:
    agent = str(event.get("user_agent", "")).lower()
    return any(marker in agent for marker in BOT_MARKERS)


def is_well_formed(user_id: str, event: Any) -> bool:
    return isinstance(event, dict) and all(event.get(field) not in (None, "") for field in REQUIRED)


def normalise(event: dict[str, Any]) -> dict[str, Any]:
    """Lower-case the type, split the URL into host and path without the query, ms timestamps."""
    url = urlsplit(str(event["url"]).strip())
    return {
        "user_id": str(event["user_id"]),
        "event_type": str(event["event_type"]).strip().lower(),
        "host": url.netloc.lower().removeprefix("www."),
        "path": url.path.rstrip("/") or "/",
        "ts": int(event["ts"]),
        "price_cents": round(float(event["price"]) * 100) if event.get("price") is not None else None,
    }


def build() -> StreamsBuilder:
    source, outputs = topics()
    builder = StreamsBuilder()
    events = builder.stream(source, key_serde="str", value_serde="json", name="raw-events")
    cleaned = (
        events.filter_not(is_bot, name="drop-bots")
        .filter(is_well_formed, name="drop-malformed")
        .map_values(normalise, name="normalise")
    )
    routes = cleaned.split(name="by-type")
    for event_type in ROUTES:
        if event_type != "other":
            routes = routes.branch(lambda _k, e, t=event_type: e["event_type"] == t, name=event_type)
    branches = routes.default_branch("other")
    for route, topic in outputs.items():
        branches[route].to(topic, key_serde="str", value_serde="json", name=f"to-{route}")
    return builder


topology = build().build()
