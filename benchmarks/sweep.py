"""Cost growth sweep: CPU per record and peak RSS of the count workload over partitions and distinct keys.

    .venv/bin/pip install -e ".[bench]"      # matplotlib, for the plot
    .venv/bin/python -m benchmarks.sweep [--partitions 8,64,256] [--keys 10000,1000000,10000000]
        [--records N] [--runs R] [--contenders streamer] [--guarantees at_least_once] [--bootstrap HOST:PORT]

Every point (partitions x keys) is one ``benchmarks.run`` invocation of the count workload
(its own input topic, loaded before any timing; medians of ``--runs`` rounds). ``--records``
defaults to max(1M, 2 x keys) so that every key is counted about twice even at 10M keys.
Prints a table and writes ``sweep-<date>.json`` and ``sweep-<date>.png`` (CPU per record
and peak RSS against keys, one line per partition count and contender) to the results
directory. The full grid takes hours on a small machine; ``--keys 10000,100000`` and
``--records`` make a quick one.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import Any

import orjson

from benchmarks import run
from benchmarks.lineup import REPO


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def sweep(args: argparse.Namespace) -> list[dict[str, Any]]:
    points = []
    for partitions in args.partitions:
        for keys in args.keys:
            records = args.records or max(1_000_000, 2 * keys)
            out = args.results_dir / f"sweep-point-p{partitions}-k{keys}.json"
            argv = ["--records", str(records), "--partitions", str(partitions), "--keys", str(keys),
                    "--runs", str(args.runs), "--workloads", "count", "--contenders", args.contenders,
                    "--guarantees", args.guarantees, "--timeout", str(args.timeout),
                    "--results-dir", str(args.results_dir), "--json", str(out)]
            if args.bootstrap:
                argv += ["--bootstrap", args.bootstrap]
            print(f"== {partitions} partitions, {keys:,} keys, {records:,} records", flush=True)
            run.main(argv)
            for row in orjson.loads(out.read_bytes())["summary"]:
                points.append({"partitions": partitions, "keys": keys, "records": records,
                               "contender": row["contender"], "guarantee": row["guarantee"],
                               "records_per_s": row["records_per_s"], "cpu_us_per_record": row["cpu_us_per_record"],
                               "peak_rss_mb": row["peak_rss_mb"], "runs_ok": row["runs_ok"], "runs": row["runs"]})
    return points


def table(points: list[dict[str, Any]]) -> str:
    header = ("contender", "guarantee", "partitions", "keys", "records", "records/s", "CPU µs/rec", "peak RSS MB",
              "runs ok")
    lines = [header] + [(p["contender"], p["guarantee"], str(p["partitions"]), f"{p['keys']:,}", f"{p['records']:,}",
                         f"{p['records_per_s'] or 0:,.0f}", f"{p['cpu_us_per_record'] or 0:.1f}",
                         f"{p['peak_rss_mb'] or 0:,.0f}", f"{p['runs_ok']}/{p['runs']}") for p in points]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
           for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def plot(points: list[dict[str, Any]], path: Path) -> None:
    """CPU per record and peak RSS against distinct keys, a line per (contender, guarantee, partitions)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit('the plot needs matplotlib: .venv/bin/pip install -e ".[bench]"') from None
    figure, (cpu, rss) = plt.subplots(1, 2, figsize=(12, 4.5))
    series: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for point in points:
        series.setdefault((point["contender"], point["guarantee"], point["partitions"]), []).append(point)
    for (contender, guarantee, partitions), found in sorted(series.items()):
        found.sort(key=lambda p: p["keys"])
        label = f"{contender} {guarantee}, {partitions} partitions"
        keys = [p["keys"] for p in found]
        cpu.plot(keys, [p["cpu_us_per_record"] for p in found], marker="o", label=label)
        rss.plot(keys, [p["peak_rss_mb"] for p in found], marker="o", label=label)
    for axes, title in ((cpu, "CPU µs per record"), (rss, "peak RSS MB")):
        axes.set_xscale("log")
        axes.set_xlabel("distinct keys")
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        axes.set_ylim(bottom=0)
    cpu.legend(fontsize=7)
    figure.suptitle("count workload: cost growth with partitions and keys")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--partitions", type=_ints, default=[8, 64, 256])
    parser.add_argument("--keys", type=_ints, default=[10_000, 1_000_000, 10_000_000])
    parser.add_argument("--records", type=int, default=None, help="input records per point (default max(1M, 2x keys))")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--contenders", default="streamer")
    parser.add_argument("--guarantees", default="at_least_once")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--bootstrap", default=None)
    parser.add_argument("--results-dir", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.datetime.now():%Y%m%d-%H%M%S}"
    points = sweep(args)
    print("\n" + table(points))
    base = args.results_dir / f"sweep-{stamp}"
    base.with_suffix(".json").write_bytes(orjson.dumps(points, option=orjson.OPT_INDENT_2))
    plot(points, base.with_suffix(".png"))
    print(f"\nresults: {base.with_suffix('.json')} and {base.with_suffix('.png')}")
    return 0 if points else 1


if __name__ == "__main__":
    sys.exit(main())
