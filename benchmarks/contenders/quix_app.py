"""The benchmark workloads as a Quix Streams app (run from its own virtualenv by the harness).

    <bench-venvs>/quixstreams/bin/python -m benchmarks.contenders.quix_app     (BENCH_* variables)

Quix Streams' defaults, except the settings every contender gets: read from the earliest
offset, the harness's commit interval and guarantee, and a state dir of its own. Counts live
in Quix's RocksDB state with its changelog topic; every update is produced.
"""

from __future__ import annotations

from typing import Any

from quixstreams import Application, State

from benchmarks.contenders.spec import COUNT_STORE, AppSpec, enrich, keep


def count_update(_value: Any, state: State) -> int:
    """The running count of this message's key (Quix scopes ``state`` to the key)."""
    count: int = state.get(COUNT_STORE, 0) + 1
    state.set(COUNT_STORE, count)
    return count


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
    sink = app.topic(spec.output, key_serializer="str", value_serializer="json")
    frame = app.dataframe(source)
    if spec.workload == "stateless":
        frame = frame.filter(keep).apply(enrich)
    else:
        frame = frame.apply(count_update, stateful=True)
    frame.to_topic(sink)
    app.run()


if __name__ == "__main__":
    main()
