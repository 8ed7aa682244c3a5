"""Clickstream test data and the outputs the clickstream app must produce for it."""

from __future__ import annotations

import random
from collections import defaultdict

import orjson

from apps.clickstream import is_bot, is_well_formed, normalise
from apps.clickstream_generator import make_event
from streamer.partitioner import default_partition

ROUTES = ("click", "view", "purchase")


def events(count: int, seed: int, start: int = 0) -> list[tuple[bytes, bytes, int]]:
    """(key, value, partition) rows, partitioned by murmur2 of the key over 4 partitions."""
    rng = random.Random(seed)
    rows = []
    for index in range(start, start + count):
        user, event = make_event(rng, index)
        key = user.encode()
        rows.append((key, orjson.dumps(event), default_partition(key, 4)))
    return rows


def expected_outputs(rows: list[tuple[bytes, bytes, int]]) -> dict[str, dict[int, list[tuple[str, dict]]]]:
    """Route -> output partition -> (key, normalised event) in the order the app must write them."""
    out: dict[str, dict[int, list[tuple[str, dict]]]] = defaultdict(lambda: defaultdict(list))
    for key, value, _ in rows:
        user, event = key.decode(), orjson.loads(value)
        if is_bot(user, event) or not is_well_formed(user, event):
            continue
        clean = normalise(event)
        route = clean["event_type"] if clean["event_type"] in ROUTES else "other"
        out[route][default_partition(key, 4)].append((user, clean))
    return out


def route_topics(prefix: str) -> dict[str, str]:
    return {route: f"{prefix}-{route}" for route in ROUTES + ("other",)}


def app_settings(input_topic: str, topics: dict[str, str]) -> dict[str, str]:
    return {"input": input_topic, "clicks": topics["click"], "views": topics["view"],
            "purchases": topics["purchase"], "other": topics["other"]}
