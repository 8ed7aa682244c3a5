"""Windowed aggregations against the real broker: the sessions app end to end, its stores read
through the local read API, and its windowed changelogs created with delete + compaction."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from apps.sessions import MINUTE_MS, build
from streamer.config import StreamerConfig
from streamer.runtime.worker import Worker
from streamer.windows import Windowed
from tests.kafka_helpers import consume_all, produce, wait_for

pytestmark = pytest.mark.broker

T0 = 1_700_000_040_000 // MINUTE_MS * MINUTE_MS
DAY_MS = 86_400_000


def _view(user: str, ts: int) -> tuple[bytes, bytes, int]:
    event = {"user_id": user, "event_type": "view", "host": "shop.example", "path": "/p", "ts": ts}
    return user.encode(), orjson.dumps(event), 0  # one partition: stream time is the same for everyone


async def _changelog_config(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None, "retention.ms": None})
    response = (await admin.describe_configs([resource]))[0]
    return {entry[0]: entry[1] for entry in response.resources[0][4]}


async def test_sessions_app_on_the_broker(kafka_bootstrap, admin, new_topic, tmp_path, monkeypatch) -> None:
    views = await new_topic("win-views", partitions=1)
    per_minute = await new_topic("win-per-minute", partitions=1)
    sessions = await new_topic("win-sessions", partitions=1)
    for name, topic in (("VIEWS", views), ("PER_MINUTE", per_minute), ("SESSIONS", sessions)):
        monkeypatch.setenv(f"STREAMER_APP_{name}", topic)
    rows = [_view("ann", T0 + 1_000), _view("bob", T0 + 2_000), _view("ann", T0 + 30_000),
            _view("ann", T0 + MINUTE_MS + 5_000), _view("bob", T0 + 50_000),  # late, within grace
            _view("ann", T0 + 2 * MINUTE_MS + 20_000)]  # closes the first two minutes
    await produce(kafka_bootstrap, views, rows)
    app_id = f"windows-{uuid.uuid4().hex[:8]}"
    config = StreamerConfig(application_id=app_id, bootstrap_servers=kafka_bootstrap, state_dir=str(tmp_path),
                            commit_interval_ms=200, processing_guarantee="exactly_once")
    worker = Worker(build().build(), config)
    running = asyncio.create_task(worker.run())
    try:
        finals = await consume_all(kafka_bootstrap, per_minute, 3, timeout=60)
        counts = {r.key.decode(): orjson.loads(r.value)["views"] for r in finals}
        assert counts == {f"ann@{T0}": 2, f"bob@{T0}": 2, f"ann@{T0 + MINUTE_MS}": 1}

        minutes = await wait_for(lambda: worker.store("views-per-minute").fetch("ann", T0, T0 + 3 * MINUTE_MS),
                                 message="the window store to show ann's minutes")
        # The store keeps a window for size + grace (+1 ms under emit on close) past the newest
        # window start: the first minute is gone from it, its final result is out.
        assert minutes == [(T0 + MINUTE_MS, 1), (T0 + 2 * MINUTE_MS, 1)]
        assert worker.store("views-per-minute").get("ann", T0) is None
        (session, value), = worker.store("user-sessions").fetch("ann")
        assert session == Windowed("ann", T0 + 1_000, T0 + 2 * MINUTE_MS + 20_000) and value["views"] == 4

        window = await _changelog_config(admin, f"{app_id}-views-per-minute-changelog")
        assert window["cleanup.policy"] == "compact,delete"
        assert int(window["retention.ms"]) == MINUTE_MS + 10_000 + 1 + DAY_MS
        buffer = await _changelog_config(admin, f"{app_id}-views-per-minute-emit-buffer-changelog")
        assert buffer["cleanup.policy"] == "compact"
    finally:
        worker.stop()
        await running
