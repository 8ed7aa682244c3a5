"""A global-table join against the real broker: two workers, each with the whole table, table
updates while events flow, and a restart that reads only the table's tail."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from apps.country_lookup import STORE, build
from tests.workers import InProcessWorker
from tests.kafka_helpers import consume_all, produce, wait_for

pytestmark = pytest.mark.broker


def _country(code: str, name: str | None) -> tuple[bytes, bytes | None]:
    return code.encode(), None if name is None else orjson.dumps({"name": name})


def _event(user: str, code: str, n: int) -> tuple[bytes, bytes]:
    return user.encode(), orjson.dumps({"country": code, "n": n})


async def _names(bootstrap: str, topic: str, count: int) -> dict[int, str | None]:
    """Event number -> the country name it was enriched with."""
    records = await consume_all(bootstrap, topic, count, timeout=90)
    values = [orjson.loads(r.value) for r in records]
    return {value["n"]: value["country_name"] for value in values}


async def test_global_table_join_with_two_workers_updates_and_a_restart(kafka_bootstrap: str, new_topic: Any,
                                                                        tmp_path: Path, monkeypatch: Any) -> None:
    countries = await new_topic("glob-countries", partitions=3)
    events = await new_topic("glob-events", partitions=4)  # not co-partitioned with the table: no need
    enriched = await new_topic("glob-enriched", partitions=4)
    for name, topic in (("COUNTRIES", countries), ("EVENTS", events), ("ENRICHED", enriched)):
        monkeypatch.setenv(f"STREAMER_APP_{name}", topic)
    codes = [f"C{n:02d}" for n in range(30)]
    await produce(kafka_bootstrap, countries, [_country(code, f"name {code}") for code in codes])
    app_id = f"global-{uuid.uuid4().hex[:8]}"
    first = InProcessWorker(build().build(), app_id, kafka_bootstrap, tmp_path / "a")
    second = InProcessWorker(build().build(), app_id, kafka_bootstrap, tmp_path / "b")
    try:
        workers = [await first.started(), await second.started()]
        # Restored before the tasks started: every worker has every row, whatever tasks it holds.
        for worker in workers:
            assert worker.store(STORE).all() == {code: {"name": f"name {code}"} for code in codes}
            assert worker.global_updater is not None and worker.global_updater.restored == len(codes)

        batch = [_event(f"u{n % 7}", codes[n % len(codes)], n) for n in range(60)]
        await produce(kafka_bootstrap, events, batch)
        names = await _names(kafka_bootstrap, enriched, 60)
        assert names == {n: f"name {codes[n % len(codes)]}" for n in range(60)}

        # Updates and deletes while the stream flows: both copies follow the topic.
        await produce(kafka_bootstrap, countries, [_country("C00", "renamed"), _country("C01", None)])
        for worker in workers:
            await wait_for(lambda w=worker: w.store(STORE).get("C00") == {"name": "renamed"}
                           and "C01" not in w.store(STORE), timeout=30, message="the update on every worker")
        await produce(kafka_bootstrap, events, [_event(f"u{n}", code, 100 + n)
                                                for n, code in enumerate(["C00", "C01", "C02", "C99"] * 4)])
        names = await _names(kafka_bootstrap, enriched, 76)
        assert {n: names[n] for n in range(100, 116)} == {
            100 + n: {"C00": "renamed", "C01": None, "C02": "name C02", "C99": None}[code]
            for n, code in enumerate(["C00", "C01", "C02", "C99"] * 4)}

        # A restart reads only what the table got while the worker was away.
        await first.stop()
        await produce(kafka_bootstrap, countries, [_country("C03", "while away"), _country("C98", "new"),
                                                   _country("C04", None)])
        first = InProcessWorker(build().build(), app_id, kafka_bootstrap, tmp_path / "a")
        restarted = await first.started()
        assert restarted.global_updater is not None and restarted.global_updater.restored == 3
        table = restarted.store(STORE).all()
        assert table["C03"] == {"name": "while away"} and table["C98"] == {"name": "new"} and "C04" not in table
        assert len(table) == len(codes) - 2 + 1
    finally:
        await asyncio.gather(first.stop(), second.stop(), return_exceptions=True)
