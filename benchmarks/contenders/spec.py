"""What every contender app is told, and the transform they all apply.

The harness passes one ``AppSpec`` to each contender process as ``BENCH_*`` environment
variables; the Python apps read it back with ``AppSpec.from_env()`` and share ``keep`` and
``enrich`` so the work per record is the same code everywhere (the Java app mirrors them).
Standard library only: this module is imported inside the peers' virtualenvs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

ENV_PREFIX = "BENCH_"
WORKLOADS = ("stateless", "count", "windowed-update", "windowed-close", "enrich")
GUARANTEES = ("at_least_once", "exactly_once")
#: Name of the count store; peers name theirs alike so their changelogs are recognisable.
COUNT_STORE = "counts"
#: The windowed workloads' tumbling window (the Java app mirrors it), aligned to the epoch.
WINDOW_MS = 10_000
#: The enrich workload's table store; peers name theirs alike.
TABLE_STORE = "users"
#: The table rows' field the enrich workload copies into each record (the Java app mirrors it).
TABLE_FIELD = "tier"


@dataclass(frozen=True)
class AppSpec:
    """One contender run: where to read and write, as whom, and under which guarantee."""

    bootstrap: str = "127.0.0.1:9092"
    input: str = "bench-input"
    output: str = "bench-output"
    #: The enrich workload's table topic (keyed and partitioned like ``input``).
    table: str = "bench-table"
    app_id: str = "bench"
    workload: str = "stateless"
    guarantee: str = "at_least_once"
    state_dir: str = "/tmp/streamer-bench-state"
    partitions: int = 8
    commit_interval_ms: int = 100

    def to_env(self) -> dict[str, str]:
        """The ``BENCH_*`` variables that ``from_env`` reads back."""
        return {ENV_PREFIX + name.upper(): str(value) for name, value in asdict(self).items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSpec:
        """Read the spec the harness set; unset variables keep the defaults (handy by hand)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = int(raw) if field.type in (int, "int") else raw
        spec = cls(**values)
        if spec.workload not in WORKLOADS or spec.guarantee not in (*GUARANTEES, "exactly_once_v2"):  # v2: streamer
            raise SystemExit(f"unsupported workload/guarantee: {spec.workload}/{spec.guarantee}")
        return spec

    @property
    def exactly_once(self) -> bool:
        return self.guarantee == "exactly_once"


def keep(value: Mapping[str, Any]) -> bool:
    """The stateless workload's filter: drops a quarter of the records, deterministically."""
    return bool(value["amount"] % 4 != 0)


def enrich(value: Mapping[str, Any]) -> dict[str, Any]:
    """The stateless workload's map_values: a new dict with one more field, as users write it."""
    return {**value, "flag": True}


def enrich_with(value: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """The enrich workload's joiner: a new dict, the record plus its key's table row's field."""
    return {**value, TABLE_FIELD: row[TABLE_FIELD]}


def windowed_key(key: str, start: int) -> str:
    """The windowed workloads' output key: every contender writes ``<key>@<window start ms>``."""
    return f"{key}@{start}"
