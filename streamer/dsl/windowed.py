"""Windowed aggregations: ``grouped.windowed_by(windows)`` and ``Table.suppress``.

``windowed_by`` takes TimeWindows or SlidingWindows (a TimeWindowedStream) or
SessionWindows (a SessionWindowedStream). Their count, reduce and aggregate return a
windowed table: keys are ``Windowed(key, start, end)``, and the table's key serde is the
windowed one (``streamer.windows.serde``) over the grouping's key serde, so
``to_stream().to(topic)`` writes keys other Kafka Streams clients can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from streamer.dsl.functions import sync_function
from streamer.dsl.nodes import LogicalNode, StoreNode, TableFilterNode, TableMapValuesNode
from streamer.errors import TopologyError
from streamer.serde import BYTES, JSON, Serde, SerdeLike, resolve_serde
from streamer.topology.topology import StoreKind
from streamer.windows.serde import SessionWindowedSerde, TimeWindowedSerde
from streamer.windows.suppressed import Suppressed
from streamer.windows.windows import (
    Duration,
    EmitStrategy,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Windows,
    check_retention,
    millis,
)

if TYPE_CHECKING:
    from streamer.dsl.grouped import GroupedStream
    from streamer.dsl.table import Table

Function = Callable[..., Any]


@dataclass(eq=False, kw_only=True)
class WindowedAggregateNode(StoreNode):
    """A windowed count/reduce/aggregate; ``buffer`` holds windows waiting to close (emit on close)."""

    windows: Windows
    initializer: Function
    aggregator: Function
    #: sessions only: ``merger(key, aggregate, aggregate)``
    merger: Function | None = None
    retention_ms: int
    buffer: str | None = None
    idle_ms: int | None = None

    @property
    def op(self) -> str:
        if isinstance(self.windows, SessionWindows):
            return "session_aggregate"
        return "sliding_aggregate" if isinstance(self.windows, SlidingWindows) else "window_aggregate"

    @property
    def stores(self) -> tuple[str, ...]:
        return (self.store,) if self.buffer is None else (self.store, self.buffer)

    @property
    def detail(self) -> str:
        return (f"{self.windows}" + (", emit on close" if self.buffer else "")
                + (f", close when idle {self.idle_ms} ms" if self.idle_ms else ""))


@dataclass(eq=False, kw_only=True)
class SuppressNode(StoreNode):
    """Holds a windowed table's updates in buffer ``store`` until ``duration_ms`` after each window's end."""

    duration_ms: int
    idle_ms: int | None = None

    @property
    def op(self) -> str:
        return "suppress"


def _count() -> tuple[Function, Function, Function | None]:
    return (lambda: 0), (lambda _k, _v, count: count + 1), (lambda _k, one, two: one + two)


def _reduce(reducer: Function) -> tuple[Function, Function, Function | None]:
    """Kafka Streams' reduce as an aggregate: no initial value, a window's first value is its aggregate."""
    reducer = sync_function(reducer)

    def add(_key: Any, value: Any, aggregate: Any) -> Any:
        return value if aggregate is None else reducer(aggregate, value)

    def merge(_key: Any, one: Any, two: Any) -> Any:
        return two if one is None else reducer(one, two)

    return (lambda: None), add, merge


class _WindowedStream:
    """What both windowed streams share: the grouping, the windows, when to emit, idle close."""

    def __init__(self, grouped: GroupedStream, windows: Windows, emit: EmitStrategy | None = None,
                 idle_ms: int | None = None) -> None:
        self.grouped = grouped
        self.windows = windows
        self.emit = emit or EmitStrategy.on_window_update()
        self.idle_ms = idle_ms

    def emit_strategy(self, strategy: EmitStrategy) -> Any:
        """``EmitStrategy.on_window_close()``: one final result per window instead of every update."""
        if not isinstance(strategy, EmitStrategy):
            raise TopologyError(f"emit_strategy() takes EmitStrategy.on_window_update() or "
                                f"EmitStrategy.on_window_close(), got {strategy!r}")
        return type(self)(self.grouped, self.windows, strategy, self.idle_ms)

    def close_when_idle(self, idle_ms: Duration) -> Any:
        """Once no record arrived for ``idle_ms`` of wall-clock time, let stream time follow the wall clock.

        Windows then close (and emit-on-close results come out) without new input; a
        record that arrives later for a window closed this way is late and dropped.
        """
        idle = millis(idle_ms, "close_when_idle idle_ms", minimum=1)
        return type(self)(self.grouped, self.windows, self.emit, idle)

    def count(self, name: str | None = None, *, value_serde: SerdeLike = None,
              retention_ms: Duration | None = None) -> Table:
        """Records per key and window or session (JSON numbers unless ``value_serde`` says otherwise)."""
        return self._aggregate("count", name, _count(), resolve_serde(value_serde, JSON), retention_ms)

    def reduce(self, reducer: Callable[[Any, Any], Any], name: str | None = None, *, value_serde: SerdeLike = None,
               retention_ms: Duration | None = None) -> Table:
        """``reducer(aggregate, value)`` per record; a window's first value is its first aggregate, and
        merging sessions reduces their aggregates too."""
        serde = resolve_serde(value_serde, self.grouped.value_serde)
        return self._aggregate("reduce", name, _reduce(reducer), serde, retention_ms)

    def _windowed_key_serde(self) -> Serde:
        raise NotImplementedError

    def _aggregate(self, op: str, name: str | None, functions: tuple[Function, Function, Function | None],
                   value_serde: Serde, retention_ms: Duration | None) -> Table:
        from streamer.dsl.table import Table

        initializer, aggregator, merger = functions
        grouped, builder, sessions = self.grouped, self.grouped.builder, isinstance(self.windows, SessionWindows)
        retention = check_retention(self.windows, retention_ms)
        on_close = self.emit.on_close
        if on_close or sessions:
            # Keep windows one ms longer than they can change, so the one that closes at the
            # instant it would expire is still there to emit (as Kafka Streams' emit-on-close
            # stores do), and a session is never hidden while a record may still join it.
            retention += 1
        kind: StoreKind = "session" if sessions else "window"
        store = builder.add_store(name or builder.generated_name(f"{kind}-{op}-store"), kind, grouped.key_serde,
                                  value_serde, retention_ms=retention, timestamped=not sessions)
        buffer = builder.add_store(f"{store}-emit-buffer", "buffer", BYTES, BYTES) if on_close else None
        upstream = grouped._partitioned(store, grouped.value_serde, always=False)
        node = builder.add(WindowedAggregateNode, [upstream], f"{store}-{op}", store=store, windows=self.windows,
                           initializer=sync_function(initializer), aggregator=sync_function(aggregator),
                           merger=sync_function(merger) if sessions else None, retention_ms=retention,
                           buffer=buffer, idle_ms=self.idle_ms)
        return Table(builder, node, self._windowed_key_serde(), value_serde, store)


class TimeWindowedStream(_WindowedStream):
    """A grouped stream in tumbling, hopping or sliding windows; aggregations return a windowed table.

    ``retention_ms`` (default: window size plus grace; sliding: twice the difference plus
    grace) is how long the store keeps windows for reads after they close.
    """

    def _windowed_key_serde(self) -> Serde:
        return TimeWindowedSerde(self.grouped.key_serde, self.windows.window_size_ms)  # type: ignore[union-attr]

    def aggregate(self, initializer: Callable[[], Any], aggregator: Callable[[Any, Any, Any], Any],
                  name: str | None = None, *, value_serde: SerdeLike = None,
                  retention_ms: Duration | None = None) -> Table:
        """``aggregator(key, value, aggregate)`` per record and window, starting from ``initializer()``."""
        serde = resolve_serde(value_serde, JSON)
        return self._aggregate("aggregate", name, (initializer, aggregator, None), serde, retention_ms)


class SessionWindowedStream(_WindowedStream):
    """A grouped stream in session windows; aggregations return a windowed table of sessions."""

    def _windowed_key_serde(self) -> Serde:
        return SessionWindowedSerde(self.grouped.key_serde)

    def aggregate(self, initializer: Callable[[], Any], aggregator: Callable[[Any, Any, Any], Any],
                  merger: Callable[[Any, Any, Any], Any], name: str | None = None, *,
                  value_serde: SerdeLike = None, retention_ms: Duration | None = None) -> Table:
        """``aggregator(key, value, aggregate)`` per record; ``merger(key, one, two)`` when a record joins sessions."""
        serde = resolve_serde(value_serde, JSON)
        return self._aggregate("aggregate", name, (initializer, aggregator, merger), serde, retention_ms)


def windowed_by(grouped: GroupedStream, windows: Windows) -> TimeWindowedStream | SessionWindowedStream:
    if isinstance(windows, SessionWindows):
        return SessionWindowedStream(grouped, windows)
    if isinstance(windows, (TimeWindows, SlidingWindows)):
        return TimeWindowedStream(grouped, windows)
    raise TopologyError(
        f"windowed_by() takes TimeWindows, SlidingWindows or SessionWindows (from streamer.windows), got {windows!r}"
    )


def _windowed_source(node: LogicalNode) -> WindowedAggregateNode | None:
    """The windowed aggregation a table comes from, through filters and map_values."""
    while isinstance(node, (TableFilterNode, TableMapValuesNode)) and len(node.parents) == 1:
        node = node.parents[0]
    return node if isinstance(node, WindowedAggregateNode) else None


def suppress(table: Table, suppressed: Suppressed) -> Table:
    """``Table.suppress``: the table with each window's final result only."""
    from streamer.dsl.table import Table

    if not isinstance(suppressed, Suppressed):
        raise TopologyError(f"suppress() takes Suppressed.until_window_closes(), got {suppressed!r}")
    source = _windowed_source(table.node)
    if source is None:
        raise TopologyError(
            "suppress(Suppressed.until_window_closes()) needs a windowed table: call it on the result of "
            "windowed_by(...).count/reduce/aggregate, or on a filter or map_values of one"
        )
    windows = source.windows
    duration = windows.grace_ms
    if isinstance(windows, SessionWindows):
        duration += windows.gap_ms
    if not isinstance(windows, TimeWindows):
        # Sliding and session windows include their end: the aggregation takes updates while
        # end + grace (+ gap) == stream time, so they are final one ms later. (Kafka Streams'
        # suppress counts them final at that instant and can emit a window twice.)
        duration += 1
    builder = table.builder
    name = suppressed.name or builder.generated_name("suppress")
    store = builder.add_store(f"{name}-store", "buffer", table.key_serde, table.value_serde)
    node = builder.add(SuppressNode, [table.node], name, store=store, duration_ms=duration,
                       idle_ms=suppressed.idle_ms)
    return Table(builder, node, table.key_serde, table.value_serde, None)

