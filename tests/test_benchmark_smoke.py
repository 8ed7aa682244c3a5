"""The benchmark harness end to end on tiny data, so it cannot rot between benchmark runs.

Runs ``python -m benchmarks.run`` against the session's broker with the ceiling and streamer
only (no peer installs, no Maven), every workload, at-least-once, and checks that the table
and the JSON carry figures for both contenders: the windowed workloads and the enrich join
for streamer only where this checkout can build them (otherwise they must be reported as
not available).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from benchmarks.lineup import lineup

REPO = Path(__file__).resolve().parent.parent
CONTENDERS = ("ceiling", "streamer")
WORKLOADS = ("stateless", "count", "windowed-update", "windowed-close", "enrich")


def test_harness_reports_figures_for_the_ceiling_and_streamer(kafka_bootstrap: str, tmp_path: Path) -> None:
    streamer = lineup()["streamer"]
    runs = {"ceiling": WORKLOADS, "streamer": tuple(w for w in WORKLOADS if streamer.why_not(w) is None)}
    out = tmp_path / "bench.json"
    command = [
        sys.executable, "-m", "benchmarks.run", "--bootstrap", kafka_bootstrap,
        "--records", "2000", "--partitions", "2", "--keys", "200", "--runs", "1",
        "--contenders", ",".join(CONTENDERS), "--workloads", ",".join(WORKLOADS),
        "--guarantees", "at_least_once", "--timeout", "40",
        "--results-dir", str(tmp_path), "--json", str(out),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-4000:]

    report = orjson.loads(out.read_bytes())
    rows = {(row["contender"], row["workload"]): row for row in report["summary"]}
    for contender in CONTENDERS:
        for workload in WORKLOADS:
            row = rows.get((contender, workload))
            assert row is not None, f"no row for {contender}/{workload}:\n{printed[-4000:]}"
            if workload not in runs[contender]:
                assert row["runs"] == 0 and row["problem"].startswith("n/a: "), row
                assert f"{contender} {workload}" in report["not_applicable"]
                continue
            assert row["runs_ok"] == 1, f"{contender}/{workload}: {row['problem']}\n{printed[-4000:]}"
            assert row["records_per_s"] > 0 and row["peak_rss_mb"] > 0 and row["cpu_us_per_record"] > 0
            assert row["vs_ceiling"] is not None
            assert (row["streamer_over_this"] is not None) == (workload in runs["streamer"]), row
    assert not report["unavailable"]
    ceiling_targets = [t for t in report["targets"] if t["contender"] == "ceiling"]
    assert {t["workload"] for t in ceiling_targets} == {"windowed-update", "windowed-close", "enrich"}

    table, _, rest = printed[printed.index("contender "):].partition("\n\n")
    for contender in CONTENDERS:
        lines = [line for line in table.splitlines() if line.startswith(contender)]
        assert len(lines) == len(WORKLOADS), table
        measured = [line for line in lines if "N/A" not in line]
        assert len(measured) == len(runs[contender]), table
        assert all(any(ch.isdigit() for ch in line.split("at_least_once")[1]) for line in measured), table
    assert rest.startswith("streamer against the targets:"), rest


def test_latency_mode_reports_percentiles_for_the_ceiling_and_streamer(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "latency.json"
    command = [
        sys.executable, "-m", "benchmarks.latency", "--bootstrap", kafka_bootstrap, "--rate", "500",
        "--seconds", "2", "--partitions", "2", "--contenders", ",".join(CONTENDERS),
        "--guarantees", "at_least_once", "--results-dir", str(tmp_path), "--json", str(out),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-4000:]
    results = orjson.loads(out.read_bytes())
    assert [r["contender"].split()[0] for r in results] == list(CONTENDERS), results
    for result in results:
        assert "error" not in result, result
        assert result["seen"] == result["sent"] > 0
        assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"], result
    assert "p99 ms" in printed
