"""The benchmark harness end to end on tiny data, so it cannot rot between benchmark runs.

Runs ``python -m benchmarks.run`` against the session's broker with the ceiling and streamer
only (no peer installs, no Maven), both workloads, at-least-once, and checks that the table
and the JSON carry figures for both contenders.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
CONTENDERS = ("ceiling", "streamer")
WORKLOADS = ("stateless", "count")


def test_harness_reports_figures_for_the_ceiling_and_streamer(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [
        sys.executable, "-m", "benchmarks.run", "--bootstrap", kafka_bootstrap,
        "--records", "2000", "--partitions", "2", "--keys", "200", "--runs", "1",
        "--contenders", ",".join(CONTENDERS), "--workloads", ",".join(WORKLOADS),
        "--guarantees", "at_least_once", "--timeout", "40",
        "--results-dir", str(tmp_path), "--json", str(out),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=150, check=False)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-4000:]

    report = orjson.loads(out.read_bytes())
    rows = {(row["contender"], row["workload"]): row for row in report["summary"]}
    for contender in CONTENDERS:
        for workload in WORKLOADS:
            row = rows.get((contender, workload))
            assert row is not None, f"no row for {contender}/{workload}:\n{printed[-4000:]}"
            assert row["runs_ok"] == 1, f"{contender}/{workload}: {row['problem']}\n{printed[-4000:]}"
            assert row["records_per_s"] > 0 and row["peak_rss_mb"] > 0 and row["cpu_us_per_record"] > 0
            assert row["vs_ceiling"] is not None and row["streamer_over_this"] is not None
    assert not report["unavailable"]

    table = printed[printed.index("contender "):]
    for contender in CONTENDERS:
        lines = [line for line in table.splitlines() if line.startswith(contender)]
        assert len(lines) == len(WORKLOADS), table
        assert all(any(ch.isdigit() for ch in line.split("at_least_once")[1]) for line in lines), table
