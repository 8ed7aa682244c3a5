"""The benchmark workloads as a streamer app.

    streamer run benchmarks.contenders.streamer_app:stateless --bootstrap-servers ... --application-id ...
    streamer run benchmarks.contenders.streamer_app:count ...

Topic names come from BENCH_INPUT / BENCH_OUTPUT (set by the harness; defaults for runs by hand).
"""

from __future__ import annotations

from benchmarks.contenders.spec import COUNT_STORE, AppSpec, enrich, keep
from streamer import StreamsBuilder, Topology


def stateless() -> Topology:
    """Parse JSON, drop a quarter, add a field, write JSON."""
    spec = AppSpec.from_env()
    builder = StreamsBuilder()
    (builder.stream(spec.input, key_serde="str", value_serde="json")
        .filter(lambda _key, value: keep(value))
        .map_values(enrich)
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
