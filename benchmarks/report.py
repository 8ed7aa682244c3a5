"""Turning runs into the figures: medians per contender, workload and guarantee, a table, targets, JSON."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.measure import RunResult


@dataclass
class Row:
    """One line of the table: a contender on a workload under a guarantee, over all its runs."""

    contender: str
    label: str
    workload: str
    guarantee: str
    runs: int
    runs_ok: int
    records_per_s: float | None = None
    vs_ceiling: float | None = None
    streamer_over_this: float | None = None
    peak_rss_mb: float | None = None
    cpu_us_per_record: float | None = None
    first_output_s: float | None = None
    #: True when no run finished and records_per_s is the pace of runs that timed out.
    partial: bool = False
    problem: str = ""


@dataclass(frozen=True)
class Target:
    """Streamer's rate on a workload must be at least ``ratio`` times ``contender``'s."""

    workload: str
    contender: str
    ratio: float

    @property
    def text(self) -> str:
        return f">= {self.ratio:g}x {TARGET_NAMES.get(self.contender, self.contender)}"


TARGET_NAMES = {"ceiling": "the ceiling", "quix": "Quix Streams", "kafka-streams": "Kafka Streams", "faust": "Faust"}
#: The targets the table is read against (issue 9 for the windowed workloads, issue 10 for enrich).
TARGETS = tuple(Target(workload, contender, ratio)
                for workload in ("windowed-update", "windowed-close", "enrich")
                for contender, ratio in (("ceiling", 0.5), ("quix", 5.0), ("kafka-streams", 3.0)))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(results: list[RunResult], labels: dict[str, str],
              not_applicable: dict[tuple[str, str, str], str] | None = None) -> list[Row]:
    """Median figures of the successful runs, with the ratios the table shows.

    ``not_applicable``: (contender, workload, guarantee) the contender cannot run, and why;
    they get a row that says so instead of a figure.
    """
    groups: dict[tuple[str, str, str], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.contender, result.workload, result.guarantee), []).append(result)
    rows = []
    for (contender, workload, guarantee), runs in groups.items():
        ok = [r for r in runs if r.status == "ok"]
        bad = [r for r in runs if r.status != "ok"]
        partial = not ok and any(r.status == "timeout" for r in runs)
        counted = ok or [r for r in runs if r.status == "timeout"]
        rows.append(Row(
            contender, labels.get(contender, contender), workload, guarantee, len(runs), len(ok),
            records_per_s=_median([r.records_per_s for r in counted if r.records_per_s]),
            peak_rss_mb=_median([r.peak_rss_mb for r in counted if r.peak_rss_mb]),
            cpu_us_per_record=_median([r.cpu_us_per_record for r in counted if r.cpu_us_per_record]),
            first_output_s=_median([r.first_output_s for r in counted if r.first_output_s is not None]),
            partial=partial,
            problem=f"{bad[0].status}: {bad[0].error}" if bad else "",
        ))
    for (contender, workload, guarantee), reason in (not_applicable or {}).items():
        rows.append(Row(contender, labels.get(contender, contender), workload, guarantee, 0, 0,
                        problem=f"n/a: {reason}"))
    rate = {(r.contender, r.workload, r.guarantee): r.records_per_s for r in rows}
    for row in rows:
        ceiling = rate.get(("ceiling", row.workload, row.guarantee))
        ours = rate.get(("streamer", row.workload, row.guarantee))
        if row.records_per_s and ceiling:
            row.vs_ceiling = row.records_per_s / ceiling
        if row.records_per_s and ours:
            row.streamer_over_this = ours / row.records_per_s
    return rows


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def _rate(row: Row) -> str:
    if row.runs_ok:
        return _fmt(row.records_per_s, ",.0f")
    if row.partial and row.records_per_s:
        return "~" + _fmt(row.records_per_s, ",.0f") + " (timeout)"
    return row.problem.split(":")[0].upper() or "-"


def table(rows: list[Row]) -> str:
    """The rows as a fixed-width text table, grouped by workload and guarantee."""
    header = ("contender", "workload", "guarantee", "records/s", "vs ceiling", "streamer/x", "CPU µs/rec",
              "peak RSS MB", "1st out s", "runs ok")
    lines = [header]
    for row in sorted(rows, key=lambda r: (r.workload, r.guarantee, -(r.records_per_s or 0))):
        lines.append((row.label, row.workload, row.guarantee,
                      _rate(row),
                      _fmt(row.vs_ceiling, ".2f"), _fmt(row.streamer_over_this, ".2f"),
                      _fmt(row.cpu_us_per_record, ".1f"), _fmt(row.peak_rss_mb, ",.0f"),
                      _fmt(row.first_output_s, ".1f"),
                      f"{row.runs_ok}/{row.runs}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    aligned = []
    for line in lines:
        cells = [cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))]
        aligned.append("  ".join(cells).rstrip())
    aligned.insert(1, "  ".join("-" * w for w in widths))
    if any(row.partial for row in rows):
        aligned.append("~: no run finished in time; the pace until the timeout (outputs seen / elapsed)")
    return "\n".join(aligned)


def targets(rows: list[Row]) -> list[dict[str, Any]]:
    """Where streamer stands against each target of the workloads and guarantees in ``rows``."""
    by_key = {(r.contender, r.workload, r.guarantee): r for r in rows}
    found = []
    for target in TARGETS:
        for guarantee in dict.fromkeys(r.guarantee for r in rows):
            ours = by_key.get(("streamer", target.workload, guarantee))
            theirs = by_key.get((target.contender, target.workload, guarantee))
            if ours is None or theirs is None:
                continue  # not in this run
            ratio = (ours.records_per_s / theirs.records_per_s
                     if ours and theirs and ours.runs_ok and ours.records_per_s and theirs.records_per_s else None)
            found.append({"workload": target.workload, "guarantee": guarantee, "target": target.text,
                          "contender": target.contender, "wanted": target.ratio, "ratio": ratio,
                          "met": None if ratio is None else ratio >= target.ratio,
                          "against_pace": bool(theirs and theirs.partial)})
    return found


def targets_table(found: list[dict[str, Any]]) -> str:
    """The targets as lines under the table: streamer's ratio and whether it is met."""
    lines = []
    for item in found:
        if item["ratio"] is None:
            verdict, ratio = "no figure", "-"
        else:
            verdict = "met" if item["met"] else "missed"
            ratio = f"{item['ratio']:.2f}x" + (" (against its pace)" if item["against_pace"] else "")
        lines.append(f"  {item['workload']:<16} {item['guarantee']:<14} {item['target']:<24} {ratio:>8}  {verdict}")
    return "streamer against the targets:\n" + "\n".join(lines) if lines else ""


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as handle:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
        with open("/proc/meminfo") as handle:
            info["memory_gb"] = round(int(handle.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
        info["java"] = (java.stderr.splitlines() or [""])[0]
    except (OSError, subprocess.TimeoutExpired):
        info["java"] = None
    return info


def rows_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]
