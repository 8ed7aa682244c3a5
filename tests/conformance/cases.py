"""The conformance cases: a named topology (built alike in Java and in Python) and its inputs.

Inputs are generated from fixed seeds, so a failure replays exactly; they include
out-of-order records, records later than the grace period, null keys and tombstones where the
topology should see them. A few hand-written scenarios pin down table re-grouping, where
random rows rarely hit every branch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

SEEDS = (1, 2)

#: Window parameters shared by both sides (ms). Forward steps of the generated time stay at
#: most one window size so no window closes and expires in one step: Kafka Streams' window
#: store drops a window once stream time passes its end by size + grace, and would then never
#: emit its final result (README: "Differences").
TUMBLING = {"window": "tumbling", "size": 10, "grace": 5}
HOPPING = {"window": "hopping", "size": 10, "advance": 4, "grace": 5}
SLIDING = {"window": "sliding", "difference": 10, "grace": 5}
SESSION = {"window": "session", "gap": 6, "grace": 4}


@dataclass(frozen=True)
class Input:
    """One input record."""

    topic: str
    key: str | None
    value: Any
    timestamp: int


@dataclass(frozen=True)
class Case:
    """A topology by name (plus ``params``), the records piped into it and the topics read back."""

    name: str
    topology: str
    inputs: tuple[Input, ...]
    outputs: tuple[str, ...] = ("out",)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def windowed(self) -> bool:
        return self.topology == "windowed"

    def to_oracle(self) -> dict[str, Any]:
        """The case in the Java oracle's input format."""
        return {
            "name": self.name,
            "topology": self.topology,
            "params": self.params,
            "inputs": [{"topic": i.topic, "key": i.key, "value": i.value, "timestamp": i.timestamp}
                       for i in self.inputs],
            "outputs": [{"topic": topic, "windowed": self.windowed} for topic in self.outputs],
        }


def _times(rng: random.Random, count: int, max_step: int, late_rate: float, max_lateness: int) -> list[int]:
    """``count`` timestamps that mostly advance by up to ``max_step``, some going back up to ``max_lateness``."""
    now, times = 0, list[int]()
    for _ in range(count):
        if times and rng.random() < late_rate:
            times.append(max(0, now - rng.randint(1, max_lateness)))
        else:
            now += rng.randint(0, max_step)
            times.append(now)
    return times


def stream_inputs(seed: int, topic: str = "in", count: int = 40, *, null_keys: bool = False,
                  null_values: bool = False) -> tuple[Input, ...]:
    """Integer values 0..49 under a few keys, out of order now and then."""
    rng = random.Random(f"{topic}-{seed}")
    rows = []
    for ts in _times(rng, count, max_step=5, late_rate=0.2, max_lateness=20):
        key = None if null_keys and rng.random() < 0.08 else rng.choice("abcd")
        value = None if null_values and rng.random() < 0.08 else rng.randrange(50)
        rows.append(Input(topic, key, value, ts))
    return tuple(rows)


def merged_inputs(seed: int) -> tuple[Input, ...]:
    """Records of "in-a" and "in-b" interleaved."""
    a, b = stream_inputs(seed, "in-a", 20), stream_inputs(seed, "in-b", 20)
    rng = random.Random(f"merge-{seed}")
    rows, ia, ib = [], 0, 0
    while ia < len(a) or ib < len(b):
        if ib >= len(b) or (ia < len(a) and rng.random() < 0.5):
            rows.append(a[ia])
            ia += 1
        else:
            rows.append(b[ib])
            ib += 1
    return tuple(rows)


def table_inputs(seed: int, count: int = 40) -> tuple[Input, ...]:
    """Integer rows of a few keys with updates, tombstones, and tombstones of keys never written."""
    rng = random.Random(f"table-{seed}")
    rows = []
    for ts in _times(rng, count, max_step=5, late_rate=0.15, max_lateness=10):
        key = f"r{rng.randrange(8)}"
        value = None if rng.random() < 0.25 else rng.randrange(50)
        rows.append(Input("table-in", key, value, ts))
    return tuple(rows)


def group_rows(seed: int, count: int = 50) -> tuple[Input, ...]:
    """Rows {"group", "amount"} that move between three groups, stay in theirs, or are deleted."""
    rng = random.Random(f"groups-{seed}")
    rows: list[Input] = []
    current: dict[str, str] = {}
    for ts in _times(rng, count, max_step=5, late_rate=0.15, max_lateness=10):
        key = f"r{rng.randrange(6)}"
        roll = rng.random()
        if roll < 0.2:
            value = None
            current.pop(key, None)
        else:
            stay = key in current and roll < 0.5  # an update within the row's own group
            group = current[key] if stay else rng.choice(("g1", "g2", "g3"))
            current[key] = group
            value = {"group": group, "amount": rng.randint(1, 20)}
        rows.append(Input("table-in", key, value, ts))
    return tuple(rows)


def _rows(*rows: tuple[str, Any, int]) -> tuple[Input, ...]:
    return tuple(Input("table-in", key, value, ts) for key, value, ts in rows)


#: Hand-written table re-grouping: a row moving groups, updated within its group, deleted,
#: a delete of a key never written, and an update older than the row's current value.
REGROUP_SCENARIO = _rows(
    ("r1", {"group": "g1", "amount": 5}, 10),
    ("r2", {"group": "g1", "amount": 3}, 11),
    ("r1", {"group": "g2", "amount": 7}, 12),
    ("r2", {"group": "g1", "amount": 4}, 13),
    ("r3", None, 14),
    ("r1", None, 15),
    ("r2", {"group": "g2", "amount": 4}, 16),
    ("r2", {"group": "g2", "amount": 9}, 8),
    ("r4", {"group": "g2", "amount": 1}, 20),
    ("r4", None, 21),
    ("r4", None, 22),
)

#: Hand-written table filter: a row that starts outside the filter, enters, changes inside,
#: leaves, is deleted while outside, and a delete of a key never written.
FILTER_SCENARIO = _rows(
    ("r1", 1, 10), ("r1", 2, 11), ("r1", 4, 12), ("r1", 5, 13), ("r1", None, 14),
    ("r2", 3, 15), ("r2", None, 16), ("r3", None, 17), ("r4", 6, 18), ("r4", None, 19),
)


def window_inputs(seed: int, params: dict[str, Any], count: int = 60, *,
                  null_values: bool = False) -> tuple[Input, ...]:
    """Values under three keys, in and out of order, some later than the grace period, then a flush.

    The flush ("tick" records stepping stream time forward) closes every window of the
    generated records, so emit-on-close and suppress show all their final results.
    """
    extent = params.get("size") or params.get("difference") or params["gap"]
    step = min(extent, 4)
    rng = random.Random(f"window-{seed}-{sorted(params.items())}")
    rows = []
    for ts in _times(rng, count, max_step=step, late_rate=0.2, max_lateness=3 * extent):
        key = None if rng.random() < 0.05 else rng.choice("abc")
        value = None if null_values and rng.random() < 0.15 else rng.randrange(10)
        rows.append(Input("in", key, value, ts))
    if params["window"] == "session" and rows:  # sessions also need gaps wider than the inactivity gap
        rows = _spread_sessions(rng, rows, params["gap"])
    now = max(row.timestamp for row in rows)
    end = now + 2 * (extent + params["grace"]) + 1
    while now < end:
        now += step
        rows.append(Input("in", "tick", 0, now))
    return tuple(rows)


def _spread_sessions(rng: random.Random, rows: list[Input], gap: int) -> list[Input]:
    """Shift the timeline right now and then by more than ``gap``, so sessions end and later ones merge."""
    shift, spread = 0, []
    for row in rows:
        if rng.random() < 0.1:
            shift += gap + rng.randint(1, gap)
        spread.append(Input(row.topic, row.key, row.value, row.timestamp + shift))
    return spread


def _seeded(label: str, topology: str, make: Any, **extra: Any) -> list[Case]:
    return [Case(f"{label}[seed={seed}]", topology, make(seed), **extra) for seed in SEEDS]


def _windowed(label: str, params: dict[str, Any], agg: str, emit: str, *, null_values: bool = False) -> list[Case]:
    full = {**params, "agg": agg, "emit": emit}
    return [Case(f"{label}[seed={seed}]", "windowed", window_inputs(seed, params, null_values=null_values),
                 params=full) for seed in SEEDS]


def all_cases() -> list[Case]:
    """Every case of the suite, in a stable order."""
    cases: list[Case] = []
    for name in ("filter", "filter_not", "map", "map_values", "flat_map", "flat_map_values", "select_key"):
        cases += _seeded(name, name, stream_inputs)
    cases += _seeded("split", "split", stream_inputs, outputs=("out-zero", "out-one", "out-other"))
    cases += _seeded("merge", "merge", merged_inputs)
    for name in ("count", "group_by_count", "reduce", "aggregate"):
        cases += _seeded(name, name, lambda seed: stream_inputs(seed, null_keys=True, null_values=True))
    cases += _seeded("to_table", "to_table", lambda seed: stream_inputs(seed, null_values=True))
    for name in ("table_source", "table_filter", "table_map_values"):
        cases += _seeded(name, name, table_inputs)
    cases.append(Case("table_filter[scenario]", "table_filter", FILTER_SCENARIO))
    for name in ("table_group_by_count", "table_group_by_aggregate", "table_group_by_reduce"):
        cases += _seeded(name, name, group_rows)
        cases.append(Case(f"{name}[scenario]", name, REGROUP_SCENARIO))
    for label, params in (("tumbling", TUMBLING), ("hopping", HOPPING), ("sliding", SLIDING), ("session", SESSION)):
        cases += _windowed(f"{label}_count", params, "count", "update")
        cases += _windowed(f"{label}_aggregate", params, "aggregate", "update")
        cases += _windowed(f"{label}_count_on_close", params, "count", "close")
        cases += _windowed(f"{label}_count_suppress", params, "count", "suppress")
    cases += _windowed("tumbling_no_grace_count", {**TUMBLING, "grace": 0}, "count", "update")
    cases += _windowed("tumbling_reduce", TUMBLING, "reduce", "update")
    cases += _windowed("session_reduce", SESSION, "reduce", "update")
    cases += _windowed("tumbling_aggregate_on_close", TUMBLING, "aggregate", "close")
    cases += _windowed("session_aggregate_on_close", SESSION, "aggregate", "close")
    cases += _windowed("sliding_aggregate_suppress", SLIDING, "aggregate", "suppress")
    cases += _windowed("tumbling_count_null_values", TUMBLING, "count", "update", null_values=True)
    cases += _windowed("sliding_count_null_values", SLIDING, "count", "update", null_values=True)
    cases += _windowed("session_aggregate_null_values", SESSION, "aggregate", "update", null_values=True)
    cases += table_join_cases()
    cases += stream_stream_join_cases()
    cases += foreign_key_join_cases()
    cases += global_table_join_cases()
    return cases


# --- stream-table and table-table joins (helper J2) ---------------------------------------------------

def _interleaved(rng: random.Random, *sides: tuple[Input, ...]) -> tuple[Input, ...]:
    """The records of every side, each side in its own order, the sides mixed at random."""
    queues = [list(side) for side in sides]
    rows: list[Input] = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        rows.append(queue.pop(0))
    return tuple(rows)


def _keyed_rows(rng: random.Random, topic: str, count: int, keys: int, *, null_values: float,
                null_keys: float = 0.0) -> tuple[Input, ...]:
    """Rows of keys r0.. with values 0..49, None now and then, timestamps out of order now and then."""
    rows = []
    for ts in _times(rng, count, max_step=5, late_rate=0.2, max_lateness=15):
        key = None if rng.random() < null_keys else f"r{rng.randrange(keys)}"
        rows.append(Input(topic, key, None if rng.random() < null_values else rng.randrange(50), ts))
    return tuple(rows)


def stream_table_inputs(seed: int) -> tuple[Input, ...]:
    """Stream records (some null keys and values) and table updates and deletes (some of keys never written)."""
    rng = random.Random(f"stream-table-{seed}")
    stream = _keyed_rows(rng, "in", 50, 6, null_values=0.06, null_keys=0.06)
    table = _keyed_rows(rng, "table-in", 30, 8, null_values=0.25)
    return _interleaved(rng, stream, table)


def table_pair_inputs(seed: int) -> tuple[Input, ...]:
    """Updates and deletes of two tables over the same keys, interleaved, timestamps out of order now and then."""
    rng = random.Random(f"table-pair-{seed}")
    left = _keyed_rows(rng, "table-in", 35, 6, null_values=0.25)
    right = _keyed_rows(rng, "table-b", 35, 6, null_values=0.25)
    return _interleaved(rng, left, right)


#: A row's lifetime on both sides: left only, both, the right updated, left deleted, right deleted,
#: deletes of keys never written, and an update older than the other side's row.
TABLE_PAIR_SCENARIO = (
    Input("table-in", "r1", 1, 10), Input("table-b", "r1", 2, 11), Input("table-b", "r1", 3, 12),
    Input("table-in", "r1", 4, 5), Input("table-in", "r1", None, 13), Input("table-in", "r1", 6, 14),
    Input("table-b", "r1", None, 15), Input("table-b", "r2", 7, 16), Input("table-b", "r3", None, 17),
    Input("table-in", "r4", None, 18), Input("table-b", "r2", None, 19), Input("table-in", "r1", None, 20),
)

#: A stream key before its row exists, after an update, after a delete and again; stream records
#: older than the row they meet (out of order: the row is read as the task has it).
STREAM_TABLE_SCENARIO = (
    Input("in", "r1", 1, 10), Input("table-in", "r1", 2, 11), Input("in", "r1", 3, 12), Input("in", "r1", 4, 5),
    Input("table-in", "r1", 5, 13), Input("in", "r1", 6, 14), Input("table-in", "r1", None, 15),
    Input("in", "r1", 7, 16), Input("table-in", "r2", 8, 17), Input("in", None, 9, 18), Input("in", "r2", None, 19),
    Input("in", "r2", 10, 20),
)


def table_join_cases() -> list[Case]:
    """Stream-table (inner, left, derived table, re-keyed stream) and table-table joins."""
    cases: list[Case] = []
    for name in ("stream_table_join", "stream_table_left_join", "stream_table_join_derived",
                 "stream_rekeyed_table_join", "stream_rekeyed_table_left_join"):
        cases += _seeded(name, name, stream_table_inputs)
        cases.append(Case(f"{name}[scenario]", name, STREAM_TABLE_SCENARIO))
    for name in ("table_table_join", "table_table_left_join", "table_table_outer_join", "table_table_join_filter",
                 "table_table_join_aggregate", "table_table_join_filtered_input"):
        cases += _seeded(name, name, table_pair_inputs)
        cases.append(Case(f"{name}[scenario]", name, TABLE_PAIR_SCENARIO))
    return cases


# --- windowed stream-stream joins (helper J1) ---------------------------------------------------------

#: Join windows of the generated cases (ms); "before"/"after" override the time difference.
STREAM_JOIN = {"difference": 10, "grace": 5}


def stream_join_inputs(seed: int, params: dict[str, Any], count: int = 60) -> tuple[Input, ...]:
    """Records of "in-a" and "in-b" (a self-join: "in") under three keys, some null keys and values,
    in and out of order, some later than the grace period, then "tick" records on the left input
    that move stream time past every window, so left and outer joins emit all unmatched records."""
    before, after = params.get("before", params["difference"]), params.get("after", params["difference"])
    extent = before + after + params["grace"]
    rng = random.Random(f"stream-join-{seed}-{sorted(params.items())}")
    topics = ("in",) if params.get("self") else ("in-a", "in-b")
    rows = []
    for ts in _times(rng, count, max_step=4, late_rate=0.2, max_lateness=2 * extent):
        key = None if rng.random() < 0.05 else rng.choice("abc")
        value = None if rng.random() < 0.05 else rng.randrange(50)
        rows.append(Input(rng.choice(topics), key, value, ts))
    now, end = max(row.timestamp for row in rows), max(row.timestamp for row in rows) + 2 * extent + 1
    while now < end:
        now += 4
        rows.append(Input(topics[0], "tick", 0, now))
    return tuple(rows)


def _a(key: str | None, value: Any, ts: int) -> Input:
    return Input("in-a", key, value, ts)


def _b(key: str | None, value: Any, ts: int) -> Input:
    return Input("in-b", key, value, ts)


#: Hand-written: a match within the window, a left record matched only after it would have
#: closed without grace, a right record before and after the left one, duplicates at one time,
#: a record out of order, one later than the grace (joins nothing, or comes out at once
#: unmatched), null keys on both sides, a null value, then time moving far ahead.
STREAM_JOIN_SCENARIO = (
    _a("k1", 1, 100), _b("k1", 2, 105), _a("k2", 3, 110), _b("k2", 4, 122), _b("k3", 5, 130),
    _a("k3", 6, 131), _a("k3", 7, 131), _b("k3", 8, 126), _a(None, 9, 132), _b(None, 10, 133),
    _a("k4", None, 134), _a("k5", 11, 140), _b("k1", 12, 99), _a("k6", 13, 160), _b("k6", 14, 150),
    _a("k7", 15, 170), _b("k7", 16, 185), _b("k8", 17, 200), _a("k8", 18, 120), _b("k2", 19, 108),
    _a("tick", 0, 400),
)


def stream_stream_join_cases() -> list[Case]:
    """Inner, left and outer joins; no grace; asymmetric and offset windows; self-joins; a re-keyed input."""
    variants: list[tuple[str, dict[str, Any]]] = [
        ("inner", {"kind": "inner"}), ("left", {"kind": "left"}), ("outer", {"kind": "outer"}),
        ("inner_no_grace", {"kind": "inner", "grace": 0}), ("left_no_grace", {"kind": "left", "grace": 0}),
        ("left_before_after", {"kind": "left", "before": 3, "after": 12, "grace": 4}),
        ("outer_before_after", {"kind": "outer", "before": 12, "after": 0}),
        ("outer_offset", {"kind": "outer", "before": -2, "after": 8, "grace": 3}),
        ("self_inner", {"kind": "inner", "self": True}), ("self_left", {"kind": "left", "self": True}),
        ("self_outer", {"kind": "outer", "self": True}),
        ("rekeyed_inner", {"kind": "inner", "rekey": True}), ("rekeyed_left", {"kind": "left", "rekey": True}),
    ]
    cases: list[Case] = []
    for label, variant in variants:
        params = {**STREAM_JOIN, **variant}
        cases += [Case(f"stream_stream_join_{label}[seed={seed}]", "stream_stream_join",
                       stream_join_inputs(seed, params), params=params) for seed in SEEDS]
    for kind in ("inner", "left", "outer"):
        cases.append(Case(f"stream_stream_join_{kind}[scenario]", "stream_stream_join", STREAM_JOIN_SCENARIO,
                          params={**STREAM_JOIN, "kind": kind}))
    return cases


# --- foreign-key joins (helper J4) ---------------------------------------------------------------------

def fk_rows(seed: int) -> tuple[Input, ...]:
    """Left rows {"fk", "n"} (fk p0..p3, None now and then; deletes) and right rows p0..p4, interleaved."""
    rng = random.Random(f"fk-{seed}")
    left = []
    for ts in _times(rng, 40, max_step=5, late_rate=0.2, max_lateness=15):
        fk = None if rng.random() < 0.15 else f"p{rng.randrange(4)}"
        value = None if rng.random() < 0.2 else {"fk": fk, "n": rng.randrange(50)}
        left.append(Input("table-in", f"l{rng.randrange(6)}", value, ts))
    right = _keyed_rows(rng, "table-fk", 30, 5, null_values=0.25)
    return _interleaved(rng, tuple(left), tuple(Input(r.topic, f"p{r.key[1:]}", r.value, r.timestamp) for r in right))


def _fk(key: str, fk: str | None, n: int, ts: int) -> Input:
    return Input("table-in", key, {"fk": fk, "n": n}, ts)


#: A match, a row without a match, its right row arriving, a foreign key change (the old right row
#: then changes unseen), the right row deleted, the extractor giving None, left deletes (also of a
#: key never written), a right delete of a key never written, a left update older than its right
#: row, a right update older than the left row, and a row going from no foreign key to one.
FK_SCENARIO = (
    Input("table-fk", "p1", 10, 1), _fk("l1", "p1", 1, 2), _fk("l2", "p2", 2, 3), Input("table-fk", "p2", 20, 4),
    _fk("l1", "p2", 3, 5), Input("table-fk", "p1", 11, 6), Input("table-fk", "p2", None, 7), _fk("l2", None, 4, 8),
    Input("table-in", "l1", None, 9), Input("table-in", "l3", None, 10), Input("table-fk", "p3", None, 11),
    _fk("l3", "p3", 5, 12), Input("table-fk", "p3", 30, 13), _fk("l3", "p3", 6, 2), Input("table-fk", "p3", 31, 1),
    _fk("l2", "p1", 7, 14), _fk("l4", None, 8, 15), Input("table-in", "l4", None, 16),
)


def foreign_key_join_cases() -> list[Case]:
    """Foreign-key joins: inner, left, a filtered right table, and a left join's result re-aggregated."""
    cases: list[Case] = []
    for name in ("fk_join", "fk_left_join", "fk_join_filtered", "fk_left_join_aggregate"):
        cases += _seeded(name, name, fk_rows)
        cases.append(Case(f"{name}[scenario]", name, FK_SCENARIO))
    cases.append(Case("fk_join_filtered[outside]", "fk_join_filtered", FK_FILTER_SCENARIO))
    return cases


#: A right row that stays outside the right table's filter while a left row subscribes to it, enters
#: it, and leaves it again.
FK_FILTER_SCENARIO = (
    Input("table-fk", "p1", 3, 1), _fk("l1", "p1", 1, 2), Input("table-fk", "p1", 5, 3), Input("table-fk", "p1", 4, 4),
    Input("table-fk", "p1", 7, 5), Input("table-fk", "p1", 9, 6), Input("table-fk", "p1", None, 7),
)


# --- stream joins with global tables (helper J3) ---------------------------------------------------------

def global_join_inputs(seed: int, count: int = 60) -> tuple[Input, ...]:
    """Table rows of "global-in" (keys ga..ge, some tombstones, also of keys never written) interleaved
    with stream records {"g": key, "n": n} of "in" ("g" missing now and then, null keys and values)."""
    rng = random.Random(f"global-join-{seed}")
    rows = []
    for n, ts in enumerate(_times(rng, count, max_step=5, late_rate=0.2, max_lateness=15)):
        if rng.random() < 0.35:
            value = None if rng.random() < 0.25 else rng.randrange(50)
            rows.append(Input("global-in", f"g{rng.choice('abcde')}", value, ts))
            continue
        key = None if rng.random() < 0.08 else rng.choice("abcdf")
        roll = rng.random()
        value = None if roll < 0.06 else {"n": n} if roll < 0.15 else {"g": f"g{rng.choice('abcdef')}", "n": n}
        rows.append(Input("in", key, value, ts))
    return tuple(rows)


#: Hand-written: a record before its row exists, the row arriving, an update, a delete, a record
#: selecting no key, a null value, a null stream key (joined by its selected key), a row older than
#: the record that reads it, and a delete of a key never written.
GLOBAL_JOIN_SCENARIO = (
    Input("in", "a", {"g": "ga", "n": 1}, 10), Input("global-in", "ga", 5, 11),
    Input("in", "a", {"g": "ga", "n": 2}, 12), Input("global-in", "ga", 6, 13),
    Input("in", "b", {"g": "ga", "n": 3}, 14), Input("global-in", "ga", None, 15),
    Input("in", "c", {"g": "ga", "n": 4}, 16), Input("in", "d", {"n": 5}, 17), Input("in", "d", None, 18),
    Input("global-in", "gb", 7, 30), Input("in", None, {"g": "gb", "n": 6}, 19),
    Input("global-in", "gz", None, 20), Input("in", "b", {"g": "gb", "n": 7}, 21),
)


def global_table_join_cases() -> list[Case]:
    """Inner and left joins with a global table, the table key from the value or from the stream's key."""
    cases: list[Case] = []
    for kind in ("inner", "left"):
        for selector in ("value", "key"):
            params = {"kind": kind, "selector": selector}
            cases += [Case(f"global_table_{kind}_join_by_{selector}[seed={seed}]", "global_table_join",
                           global_join_inputs(seed), params=params) for seed in SEEDS]
            cases.append(Case(f"global_table_{kind}_join_by_{selector}[scenario]", "global_table_join",
                              GLOBAL_JOIN_SCENARIO, params=params))
    return cases
