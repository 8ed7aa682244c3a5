"""The benchmark workloads as a Faust app (faust-streaming, run from its own virtualenv).

    <bench-venvs>/faust/bin/python -m benchmarks.contenders.faust_app worker -l warning

Faust's defaults, except the settings every contender gets: read from the earliest offset,
the harness's commit interval and guarantee, RocksDB tables (rocksdict) in a state dir of
its own, no web server. Each record is sent with ``await topic.send``, the documented way.

The windowed count (on update only: Faust closes windows by wall clock, see
``FAUST_LACKS`` in ``benchmarks/lineup.py``) is a tumbling table relative to the stream's
record timestamps, with no expiry: Faust expires windows against ``time.time()``, which
would drop the input's still open windows of 2023 mid-count.

The enrich workload is a Table lookup in an agent. The table is a Faust Table whose
changelog topic is the table topic itself: Faust recovers a table from its changelog before
its agents start, so every row is in before the first record (the agent only reads it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import faust

from benchmarks.contenders.spec import (
    COUNT_STORE,
    TABLE_STORE,
    WINDOW_MS,
    AppSpec,
    enrich,
    enrich_with,
    keep,
    windowed_key,
)

spec = AppSpec.from_env()
app = faust.App(
    spec.app_id,
    broker=f"kafka://{spec.bootstrap}",
    store="rocksdb://",
    datadir=spec.state_dir,
    processing_guarantee=spec.guarantee,
    broker_commit_interval=spec.commit_interval_ms / 1000,
    consumer_auto_offset_reset="earliest",
    topic_partitions=spec.partitions,
    topic_replication_factor=1,
    key_serializer="raw",
    value_serializer="json",
    web_enabled=False,
)
source = app.topic(spec.input, key_serializer="raw", value_serializer="json")
sink = app.topic(spec.output, key_serializer="raw", value_serializer="json")


if spec.workload == "stateless":

    @app.agent(source)
    async def stateless(stream: AsyncIterator[Any]) -> None:
        async for key, value in stream.items():  # type: ignore[attr-defined]
            if keep(value):
                await sink.send(key=key, value=enrich(value))

elif spec.workload == "windowed-update":
    windows = app.Table(COUNT_STORE, default=int, partitions=spec.partitions).tumbling(
        WINDOW_MS / 1000).relative_to_stream()

    @app.agent(source)
    async def windowed_update(stream: AsyncIterator[Any]) -> None:
        async for event in stream.events():  # type: ignore[attr-defined]
            timestamp = round(event.message.timestamp * 1000)  # Faust keeps seconds
            windows[event.key] += 1
            await sink.send(key=windowed_key(event.key.decode(), timestamp - timestamp % WINDOW_MS).encode(),
                            value=windows[event.key].current())

elif spec.workload == "count":
    counts = app.Table(COUNT_STORE, default=int, partitions=spec.partitions)

    @app.agent(source)
    async def count(stream: AsyncIterator[Any]) -> None:
        async for key, _value in stream.items():  # type: ignore[attr-defined]
            counts[key] += 1
            await sink.send(key=key, value=counts[key])

elif spec.workload == "enrich":
    users = app.Table(TABLE_STORE, partitions=spec.partitions,
                      changelog_topic=app.topic(spec.table, key_serializer="raw", value_serializer="json",
                                                partitions=spec.partitions))

    @app.agent(source)
    async def enrich_records(stream: AsyncIterator[Any]) -> None:
        async for key, value in stream.items():  # type: ignore[attr-defined]
            row = users.get(key)
            if row is not None:  # an inner join
                await sink.send(key=key, value=enrich_with(value, row))

else:
    raise SystemExit(f"no {spec.workload} in Faust: see FAUST_LACKS in benchmarks/lineup.py")


if __name__ == "__main__":
    app.main()
