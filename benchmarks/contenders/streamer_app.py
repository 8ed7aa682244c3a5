"""The benchmark workloads as a streamer app.

    streamer run benchmarks.contenders.streamer_app:stateless --bootstrap-servers ... --application-id ...
    streamer run benchmarks.contenders.streamer_app:count ...
    streamer run benchmarks.contenders.streamer_app:windowed_update ...      (and windowed_close)
    streamer run benchmarks.contenders.streamer_app:enrich ...

Topic names come from BENCH_INPUT / BENCH_OUTPUT / BENCH_TABLE (set by the harness; defaults
for runs by hand).
"""

from __future__ import annotations

from typing import Any

from benchmarks.contenders.spec import (
    COUNT_STORE,
    TABLE_STORE,
    WINDOW_MS,
    AppSpec,
    enrich as flag,  # the stateless transform; ``enrich`` here is the join workload's entry point
    enrich_with,
    keep,
    windowed_key,
)
from streamer import StreamsBuilder, Topology


def stateless() -> Topology:
    """Parse JSON, drop a quarter, add a field, write JSON."""
    spec = AppSpec.from_env()
    builder = StreamsBuilder()
    (builder.stream(spec.input, key_serde="str", value_serde="json")
        .filter(lambda _key, value: keep(value))
        .map_values(flag)
        .to(spec.output, key_serde="str", value_serde="json"))
    return builder.build()


def count() -> Topology:
    """Count per key in a RocksDB store with a changelog; every update goes to the output."""
    spec = AppSpec.from_env()
    builder = StreamsBuilder()
    (builder.stream(spec.input, key_serde="str", value_serde="json")
        .group_by_key()
        .count(name=COUNT_STORE)
        .to_stream()
        .to(spec.output, key_serde="str", value_serde="json"))
    return builder.build()


def windowed_update() -> Topology:
    """A 10 s tumbling count per key in a window store with a changelog; every update goes out."""
    return _windowed_count(on_close=False)


def windowed_close() -> Topology:
    """The same count, one final record per key and window once stream time passes its end."""
    return _windowed_count(on_close=True)


def _windowed_count(on_close: bool) -> Topology:
    # Imported here so that the other workloads run on a streamer without the windows DSL.
    from streamer.windows import EmitStrategy, TimeWindows

    spec = AppSpec.from_env()
    builder = StreamsBuilder()
    windowed = (builder.stream(spec.input, key_serde="str", value_serde="json")
                .group_by_key()
                .windowed_by(TimeWindows.of_size_with_no_grace(WINDOW_MS)))
    if on_close:
        windowed = windowed.emit_strategy(EmitStrategy.on_window_close())
    (windowed.count(name=COUNT_STORE)
        .to_stream()
        .map(_window_key)
        .to(spec.output, key_serde="str", value_serde="json"))
    return builder.build()


def _window_key(key: Any, count: int) -> tuple[str, int]:
    """``Windowed`` key to the ``key@start`` string every contender writes."""
    return windowed_key(key.key, key.start), count


def enrich() -> Topology:
    """Each record joined with its key's row of the table (a stream-table inner join)."""
    spec = AppSpec.from_env()
    builder = StreamsBuilder()
    table = builder.table(spec.table, key_serde="str", value_serde="json", name=TABLE_STORE)
    (builder.stream(spec.input, key_serde="str", value_serde="json")
        .join(table, enrich_with)
        .to(spec.output, key_serde="str", value_serde="json"))
    return builder.build()
