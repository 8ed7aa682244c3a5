"""The benchmark workloads as a Quix Streams app (run from its own virtualenv by the harness).

    <bench-venvs>/quixstreams/bin/python -m benchmarks.contenders.quix_app     (BENCH_* variables)

Quix Streams' defaults, except the settings every contender gets: read from the earliest
offset, the harness's commit interval and guarantee, and a state dir of its own. Counts live
in Quix's RocksDB state with its changelog topic; every update is produced.

The windowed counts are Quix's tumbling window with ``.current()`` (every update) or
``.final()`` (on close), both closing windows by the partition's stream time
(``closing_strategy="partition"``, as Kafka Streams; Quix's default closes a key's windows
only when that key comes again). The ``{"start", "end", "value"}`` results go out as
``key@start`` with the count, the output every contender writes.

The enrich workload is ``join_asof`` (inner) with a dataframe of the table topic: the
stream-table join of this version over a topic (``join_lookup`` reads external stores:
SQLite, PostgreSQL, the Quix configuration service). Quix aligns the two topics' partitions
by timestamp, so the table's rows, all older than the first record, are stored first.
"""

from __future__ import annotations

from typing import Any

import orjson
from quixstreams import Application, State
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models.serializers.json import JSONSerializer

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


def count_update(_value: Any, state: State) -> int:
    """The running count of this message's key (Quix scopes ``state`` to the key)."""
    count: int = state.get(COUNT_STORE, 0) + 1
    state.set(COUNT_STORE, count)
    return count


def windowed_count(frame: StreamingDataFrame, on_close: bool) -> StreamingDataFrame:
    """``(key@start, count)`` per window update, or per closed window."""
    window = frame.tumbling_window(WINDOW_MS).count()
    results = window.final(closing_strategy="partition") if on_close else window.current(closing_strategy="partition")
    return results.apply(_keyed, metadata=True)


def _keyed(result: dict[str, Any], key: str, _timestamp: int, _headers: Any) -> tuple[str, int]:
    return windowed_key(key, result["start"]), result["value"]


def _count_json(pair: tuple[str, int]) -> bytes:
    """The sink's value: the count of a ``(key@start, count)`` pair (its key goes to ``to_topic``)."""
    return orjson.dumps(pair[1])


def main() -> None:
    spec = AppSpec.from_env()
    app = Application(
        broker_address=spec.bootstrap,
        consumer_group=spec.app_id,
        auto_offset_reset="earliest",
        commit_interval=spec.commit_interval_ms / 1000,
        processing_guarantee="exactly-once" if spec.exactly_once else "at-least-once",
        state_dir=spec.state_dir,
        loglevel="WARNING",
    )
    source = app.topic(spec.input, key_deserializer="str", value_deserializer="json")
    frame = app.dataframe(source)
    if spec.workload.startswith("windowed"):
        sink = app.topic(spec.output, key_serializer="str", value_serializer=JSONSerializer(dumps=_count_json))
        frame = windowed_count(frame, on_close=spec.workload == "windowed-close")
        frame.to_topic(sink, key=lambda pair: pair[0])
    else:
        sink = app.topic(spec.output, key_serializer="str", value_serializer="json")
        if spec.workload == "stateless":
            frame = frame.filter(keep).apply(enrich)
        elif spec.workload == "enrich":
            table = app.dataframe(app.topic(spec.table, key_deserializer="str", value_deserializer="json"))
            frame = frame.join_asof(table, how="inner", on_merge=enrich_with, name=TABLE_STORE)
        else:
            frame = frame.apply(count_update, stateful=True)
        frame.to_topic(sink)
    app.run()


if __name__ == "__main__":
    main()
