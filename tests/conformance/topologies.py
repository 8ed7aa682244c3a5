"""The streamer twin of each topology in java/.../Topologies.java: same topics, same functions.

Keep the two in step. Keys are strings and values JSON on both sides; integer arithmetic only
(values are never negative where ``%`` is taken, so Java's and Python's ``%`` agree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, cast

import pytest

from streamer import StreamsBuilder, Topology
from streamer.dsl.stream import Stream
from streamer.dsl.table import Table

if TYPE_CHECKING:
    from streamer.dsl.windowed import SessionWindowedStream, TimeWindowedStream

OUT = "out"
Build = Callable[[StreamsBuilder, dict[str, Any]], None]


def _stream(b: StreamsBuilder, topic: str = "in") -> Stream:
    return b.stream(topic, key_serde="str", value_serde="json")


def _table(b: StreamsBuilder) -> Table:
    return b.table("table-in", key_serde="str", value_serde="json", name="table-in-store")


def _to_out(stream: Stream, topic: str = OUT) -> None:
    stream.to(topic, key_serde="str", value_serde="json")


def _split(b: StreamsBuilder) -> None:
    branches = (_stream(b).split()
                .branch(lambda k, v: v % 3 == 0, name="zero")
                .branch(lambda k, v: v % 3 == 1, name="one")
                .default_branch("other"))
    for name, stream in branches.items():
        _to_out(stream, f"out-{name}")


def _append(key: Any, value: Any, agg: str) -> str:
    """The aggregator of Topologies.append: values in the order they were added (None as "-")."""
    return f"{agg}{'-' if value is None else value};"


def _sum(agg: int, value: Any) -> int:
    """The reducer of Topologies.sum: a None value counts as 0."""
    return agg + (0 if value is None else value)


_STATELESS: dict[str, Build] = {
    "filter": lambda b, p: _to_out(_stream(b).filter(lambda k, v: v % 2 == 0)),
    "filter_not": lambda b, p: _to_out(_stream(b).filter_not(lambda k, v: v % 3 == 0)),
    "map": lambda b, p: _to_out(_stream(b).map(lambda k, v: (f"{k}:{v % 3}", v * 10))),
    "map_values": lambda b, p: _to_out(_stream(b).map_values(lambda v: v + 1)),
    "flat_map": lambda b, p: _to_out(_stream(b).flat_map(
        lambda k, v: [] if v % 3 == 0 else [(k, v), (k + "!", v * 2)])),
    "flat_map_values": lambda b, p: _to_out(_stream(b).flat_map_values(lambda v: [v, v + 100] if v % 2 == 1 else [])),
    "select_key": lambda b, p: _to_out(_stream(b).select_key(lambda k, v: f"k{v % 4}")),
    "split": lambda b, p: _split(b),
    "merge": lambda b, p: _to_out(_stream(b, "in-a").map_values(lambda v: v * 2).merge(_stream(b, "in-b"))),
}

_AGGREGATIONS: dict[str, Build] = {
    "count": lambda b, p: _to_out(_stream(b).group_by_key().count("count-store").to_stream()),
    "group_by_count": lambda b, p: _to_out(
        _stream(b).group_by(lambda k, v: "gnull" if v is None else f"g{v % 3}", key_serde="str")
        .count("count-store").to_stream()),
    "reduce": lambda b, p: _to_out(
        _stream(b).group_by_key().reduce(lambda agg, v: agg + v, "reduce-store").to_stream()),
    "aggregate": lambda b, p: _to_out(
        _stream(b).group_by_key().aggregate(lambda: "", lambda k, v, agg: f"{agg}{v};", "aggregate-store").to_stream()),
    "to_table": lambda b, p: _to_out(_stream(b).to_table("to-table-store").to_stream()),
}

_TABLES: dict[str, Build] = {
    "table_source": lambda b, p: _to_out(_table(b).to_stream()),
    "table_filter": lambda b, p: _to_out(_table(b).filter(lambda k, v: v % 2 == 0).to_stream()),
    "table_map_values": lambda b, p: _to_out(_table(b).map_values(lambda v: v * 2).to_stream()),
    "table_group_by_count": lambda b, p: _to_out(
        _table(b).group_by(lambda k, v: (v["group"], v), key_serde="str").count("group-store").to_stream()),
    "table_group_by_aggregate": lambda b, p: _to_out(
        _table(b).group_by(lambda k, v: (v["group"], v), key_serde="str")
        .aggregate(lambda: 0, lambda k, v, agg: agg + v["amount"], lambda k, v, agg: agg - v["amount"], "group-store")
        .to_stream()),
    "table_group_by_reduce": lambda b, p: _to_out(
        _table(b).group_by(lambda k, v: (v["group"], v["amount"]), key_serde="str")
        .reduce(lambda agg, v: agg + v, lambda agg, v: agg - v, "group-store").to_stream()),
}


def windows_api() -> Any:
    """``streamer.windows`` if it has the window DSL yet; otherwise the calling test is skipped."""
    import streamer.windows as windows

    if not hasattr(windows, "TimeWindows"):
        pytest.skip("streamer.windows has no TimeWindows yet (the window DSL is not in the tree); "
                    "the Kafka Streams side of this case ran and is checked")
    return windows


def _windowed(b: StreamsBuilder, p: dict[str, Any]) -> None:
    """The twin of Topologies.windowed: a windowed aggregation of "in" by key."""
    w = windows_api()
    kind, agg, grace = p["window"], p["agg"], p["grace"]
    grouped = _stream(b).group_by_key()
    if kind == "session":
        gap = w.SessionWindows.of_inactivity_gap_and_grace(p["gap"], grace)
        sessions = cast("SessionWindowedStream", grouped.windowed_by(gap))
        if p["emit"] == "close":
            sessions = sessions.emit_strategy(w.EmitStrategy.on_window_close())
        if agg == "count":
            table: Table = sessions.count("window-store")
        elif agg == "reduce":
            table = sessions.reduce(_sum, "window-store")
        else:
            table = sessions.aggregate(lambda: "", _append, lambda key, left, right: left + right, "window-store")
    else:
        if kind == "sliding":
            spec = w.SlidingWindows.of_time_difference_and_grace(p["difference"], grace)
        else:
            spec = w.TimeWindows.of_size_and_grace(p["size"], grace)
            if kind == "hopping":
                spec = spec.advance_by(p["advance"])
        windows = cast("TimeWindowedStream", grouped.windowed_by(spec))
        if p["emit"] == "close":
            windows = windows.emit_strategy(w.EmitStrategy.on_window_close())
        if agg == "count":
            table = windows.count("window-store")
        elif agg == "reduce":
            table = windows.reduce(_sum, "window-store")
        else:
            table = windows.aggregate(lambda: "", _append, "window-store")
    if p["emit"] == "suppress":
        table = table.suppress(w.Suppressed.until_window_closes())
    table.to_stream().to(OUT, value_serde="json")


TOPOLOGIES: dict[str, Build] = {**_STATELESS, **_AGGREGATIONS, **_TABLES, "windowed": _windowed}


def build(topology: str, params: dict[str, Any]) -> Topology:
    """The streamer topology named ``topology`` (as the Java oracle names it)."""
    builder = StreamsBuilder()
    TOPOLOGIES[topology](builder, params)
    return builder.build()


# --- stream-table and table-table joins (helper J2; Java: TableJoins.java) ---------------------------

def _join_table(b: StreamsBuilder, topic: str) -> Table:
    return b.table(topic, key_serde="str", value_serde="json", name=f"{topic}-store")


def _pair(left: Any, right: Any) -> list[Any]:
    """The joiner of every join case: [left, right], a missing side as None."""
    return [left, right]


def _first_even(k: Any, v: list[Any]) -> bool:
    return (v[0] or 0) % 2 == 0


_TABLE_JOINS: dict[str, Build] = {
    "stream_table_join": lambda b, p: _to_out(_stream(b).join(_join_table(b, "table-in"), _pair)),
    "stream_table_left_join": lambda b, p: _to_out(_stream(b).left_join(_join_table(b, "table-in"), _pair)),
    "stream_table_join_derived": lambda b, p: _to_out(_stream(b).left_join(
        _join_table(b, "table-in").filter(lambda k, v: v % 2 == 0).map_values(lambda v: v * 10), _pair)),
    "stream_rekeyed_table_join": lambda b, p: _to_out(
        _stream(b).select_key(lambda k, v: "rnull" if v is None else f"r{v % 8}")
        .join(_join_table(b, "table-in"), _pair)),
    "stream_rekeyed_table_left_join": lambda b, p: _to_out(
        _stream(b).select_key(lambda k, v: None if v is None or v % 5 == 0 else f"r{v % 8}")
        .left_join(_join_table(b, "table-in"), _pair)),
    "table_table_join": lambda b, p: _to_out(
        _join_table(b, "table-in").join(_join_table(b, "table-b"), _pair).to_stream()),
    "table_table_left_join": lambda b, p: _to_out(
        _join_table(b, "table-in").left_join(_join_table(b, "table-b"), _pair).to_stream()),
    "table_table_outer_join": lambda b, p: _to_out(
        _join_table(b, "table-in").outer_join(_join_table(b, "table-b"), _pair).to_stream()),
    "table_table_join_filter": lambda b, p: _to_out(
        _join_table(b, "table-in").outer_join(_join_table(b, "table-b"), _pair).filter(_first_even).to_stream()),
    "table_table_join_aggregate": lambda b, p: _to_out(
        _join_table(b, "table-in")
        .left_join(_join_table(b, "table-b"), lambda a, c: a * 100 + (99 if c is None else c))
        .group_by(lambda k, v: (f"g{v % 3}", v), key_serde="str")
        .reduce(lambda agg, v: agg + v, lambda agg, v: agg - v, value_serde="json").to_stream()),
    # unnamed tables: the filter has no old values, so the join forwards deletes of rows that never matched
    "table_table_join_filtered_input": lambda b, p: _to_out(
        b.table("table-in", key_serde="str", value_serde="json").filter(lambda k, v: v % 2 == 0)
        .join(b.table("table-b", key_serde="str", value_serde="json"), _pair).to_stream()),
}
TOPOLOGIES.update(_TABLE_JOINS)


# --- windowed stream-stream joins (helper J1; Java: StreamStreamJoins.java) --------------------------

def _stream_pair(left: Any, right: Any) -> list[Any]:
    """The joiner of the stream-stream cases: [left, right], a missing side as None."""
    return [left, right]


def _stream_stream_join(b: StreamsBuilder, p: dict[str, Any]) -> None:
    """The twin of StreamStreamJoins.build: "in-a" joined with "in-b" (a self-join: "in" with itself)."""
    from streamer import JoinWindows

    windows = JoinWindows.of_time_difference_and_grace(p["difference"], p["grace"])
    if "before" in p:
        windows = windows.before(p["before"])
    if "after" in p:
        windows = windows.after(p["after"])
    left = _stream(b, "in" if p.get("self") else "in-a")
    right = left if p.get("self") else _stream(b, "in-b")
    if p.get("rekey"):
        left = left.select_key(lambda k, v: k)
    join = {"inner": left.join, "left": left.left_join, "outer": left.outer_join}[p["kind"]]
    _to_out(join(right, _stream_pair, windows))


TOPOLOGIES["stream_stream_join"] = _stream_stream_join


# --- foreign-key joins (helper J4; Java: ForeignKeyJoins.java) ------------------------------------------

def _foreign_key(value: Any) -> Any:
    """The extractor of ForeignKeyJoins.foreignKey: the row's "fk" text, None when it has none."""
    fk = value.get("fk")
    return fk if isinstance(fk, str) else None


def _fk_tables(b: StreamsBuilder) -> tuple[Table, Table]:
    return _join_table(b, "table-in"), _join_table(b, "table-fk")


def _fk_join(b: StreamsBuilder, name: str) -> None:
    left, right = _fk_tables(b)
    if name == "fk_join":
        result = left.join(right, _pair, foreign_key_extractor=_foreign_key)
    elif name == "fk_left_join":
        result = left.left_join(right, _pair, foreign_key_extractor=_foreign_key)
    elif name == "fk_join_filtered":
        result = left.join(right.filter(lambda k, v: v % 2 == 0), _pair, foreign_key_extractor=_foreign_key)
    else:
        result = (left.left_join(right, _pair, foreign_key_extractor=_foreign_key)
                  .group_by(lambda k, v: ("none" if v[1] is None else f"r{v[1] % 2}", v[0]["n"]), key_serde="str")
                  .reduce(lambda agg, v: agg + v, lambda agg, v: agg - v, value_serde="json"))
    _to_out(result.to_stream())


TOPOLOGIES.update({name: (lambda b, p, name=name: _fk_join(b, name))
                   for name in ("fk_join", "fk_left_join", "fk_join_filtered", "fk_left_join_aggregate")})


# --- stream joins with global tables (helper J3; Java: GlobalTableJoins.java) ----------------------------

def _global_joined(value: Any, row: Any) -> dict[str, Any]:
    """The joiner of GlobalTableJoins.joined: the record's "n" and the row it met (None if none)."""
    return {"n": value["n"], "row": row}


_GLOBAL_SELECTORS: dict[str, Callable[[Any, Any], Any]] = {
    "value": lambda k, v: v.get("g") if isinstance(v.get("g"), str) else None,
    "key": lambda k, v: None if k is None else f"g{k}",
}


def _global_table_join(b: StreamsBuilder, p: dict[str, Any]) -> None:
    """The twin of GlobalTableJoins.build: "in" joined with the global table of "global-in"."""
    table = b.global_table("global-in", key_serde="str", value_serde="json", name="global-store")
    stream = _stream(b)
    join = stream.join if p["kind"] == "inner" else stream.left_join
    _to_out(join(table, _global_joined, key_selector=_GLOBAL_SELECTORS[p["selector"]]))


TOPOLOGIES["global_table_join"] = _global_table_join
