"""Garbage-collector settings for a worker's hot path.

Every record allocates a few objects (the Record, its value, a Change), so with
CPython's default thresholds (a generation-0 collection every 700 allocations) a
10k-record batch triggers many collections, and the older generations are scanned over
and over. Records rarely form reference cycles, so collecting far less often costs
little memory. Measured with benchmarks/pipeline_bench.py on 2 cores: 2.4x the
throughput of the stateless workload and 2x the count workload.
"""

from __future__ import annotations

import gc

#: Allocations between generation-0 collections, and the ratios for generations 1 and 2.
THRESHOLDS = (50_000, 20, 100)


def tune_for_throughput() -> None:
    """Freeze what start-up allocated (modules, the topology) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
