"""The app the chaos test kills: an echo, two running aggregates (one behind a repartition topic),
a windowed aggregate emitted when its window closes and a stream-table enrichment.

    input (key: "kNN", value: {"k": key, "s": seq, "v": int}, event time: the record timestamp)
      --> echo             the input bytes unchanged (same key, so same partition)
      --> agg-direct       per key {count, sum, min, max, seq}, every update
      --> windowed         per key and 1 s tumbling window (1 s grace) {count, sum}, one final
                           record per window on close; key "kNN@<window start>"
      --> left_join(table) enriched  {"k", "s", "version"}: the input's id and the version of
                           its key's table row the join saw (None: no row, or a tombstone)
      --> group_by(value["k"]) --> <app>-chaos-by-key-repartition
          --> agg-repart   the same aggregate, computed after the repartition
    table (key "kNN", value {"version": n} or a tombstone), co-partitioned with the input

``seq`` in an update names the input it folded in, so the verifier can line the k-th
update up with the k-th input of the key. The echo's sub-topology also writes the
repartition topic, so one transaction covers echo, changelog, repartition records and
input offsets; the aggregate after the repartition has transactions of its own.

The windowed aggregate runs in the echo's sub-topology and keeps its own stream time, that
of the input records it receives (one input partition). The table joins the same
sub-topology, so each of its tasks reads input partition p and table partition p in
timestamp order; the workers run with ``max_task_idle_ms = MAX_TASK_IDLE_MS`` (set by the
runner) so that a task holds the table rows back while its input partition is
momentarily empty (docs/chaos.md). Topic names come from app settings ``input``, ``echo``,
``agg_direct``, ``agg_repart``, ``windowed``, ``table`` and ``enriched``.
"""

from __future__ import annotations

from typing import Any

import orjson

from streamer import StreamsBuilder, app_setting
from streamer.windows import EmitStrategy, TimeWindows
from tests.chaos.generator import WINDOW_GRACE_MS, WINDOW_SIZE_MS, enrich, fold, fold_window, window_key

#: Store names: their changelogs are ``<application.id>-<store>-changelog``.
DIRECT_STORE = "chaos-agg-direct"
REPART_STORE = "chaos-agg-repart"
WINDOW_STORE = "chaos-windowed"
TABLE_STORE = "chaos-table"
REPARTITION_NAME = "chaos-by-key"
#: How long (wall clock) a task waits for an empty, caught-up input partition before it
#: applies table rows without it: far longer than the input's gaps, so it never does while
#: the input flows (it does once at the end, for the table rows ahead of the last input).
MAX_TASK_IDLE_MS = 5_000


def initial() -> dict[str, Any]:
    return {"count": 0, "sum": 0, "min": None, "max": None, "seq": -1}


def add(_key: str, record: dict[str, Any], aggregate: dict[str, Any]) -> dict[str, Any]:
    return fold(aggregate, record["s"], record["v"])


def window_initial() -> dict[str, int]:
    return {"count": 0, "sum": 0}


def window_add(_key: str, record: dict[str, Any], aggregate: dict[str, int]) -> dict[str, int]:
    return fold_window(aggregate, record["v"])


def build() -> StreamsBuilder:
    builder = StreamsBuilder()
    source = builder.stream(app_setting("input", "chaos-input"), key_serde="str", value_serde="bytes",
                            name="chaos-source")
    source.to(app_setting("echo", "chaos-echo"), name="to-echo")
    parsed = source.map_values(orjson.loads, name="parse")
    (
        parsed.group_by_key(value_serde="json")
        .aggregate(initial, add, DIRECT_STORE)
        .to_stream(name="direct-updates")
        .to(app_setting("agg_direct", "chaos-agg-direct"), value_serde="json", name="to-agg-direct")
    )
    (
        parsed.group_by_key(value_serde="json")
        .windowed_by(TimeWindows.of_size_and_grace(WINDOW_SIZE_MS, WINDOW_GRACE_MS))
        .emit_strategy(EmitStrategy.on_window_close())
        .aggregate(window_initial, window_add, WINDOW_STORE)
        .to_stream(name="window-finals")
        .map(lambda window, value: (window_key(window.key, window.start), value), name="window-key")
        .to(app_setting("windowed", "chaos-windowed"), key_serde="str", value_serde="json", name="to-windowed")
    )
    table = builder.table(app_setting("table", "chaos-table"), key_serde="str", value_serde="json", name=TABLE_STORE)
    (
        parsed.left_join(table, enrich, name="enrich")
        .to(app_setting("enriched", "chaos-enriched"), value_serde="json", name="to-enriched")
    )
    (
        parsed.group_by(lambda _key, record: record["k"], key_serde="str", value_serde="json",
                        name=REPARTITION_NAME)
        .aggregate(initial, add, REPART_STORE)
        .to_stream(name="repart-updates")
        .to(app_setting("agg_repart", "chaos-agg-repart"), value_serde="json", name="to-agg-repart")
    )
    return builder


topology = build().build()
