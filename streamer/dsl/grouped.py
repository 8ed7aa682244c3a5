"""Grouped streams and grouped tables: the step before an aggregation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from streamer.dsl.functions import sync_function
from streamer.dsl.nodes import LogicalNode, StreamAggregateNode, TableAggregateNode
from streamer.dsl.stream import through_repartition_topic
from streamer.processors.change import ChangeSerde
from streamer.serde import JSON, Serde, SerdeLike, resolve_serde

if TYPE_CHECKING:
    from streamer.dsl.builder import StreamsBuilder
    from streamer.dsl.table import Table
    from streamer.dsl.windowed import SessionWindowedStream, TimeWindowedStream
    from streamer.windows.windows import Windows


class _Grouped:
    """What both kinds of grouping hold until an aggregation turns them into a table."""

    def __init__(self, builder: StreamsBuilder, node: LogicalNode, key_serde: Serde, value_serde: Serde,
                 name: str | None) -> None:
        self.builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.name = name

    _repartitioned: LogicalNode | None = None

    def _partitioned(self, store: str, value_serde: Serde, always: bool) -> LogicalNode:
        """The node the aggregation reads: through one repartition topic per grouping, if needed."""
        if not (always or self.node.key_changed):
            return self.node
        if self._repartitioned is None:
            self._repartitioned = through_repartition_topic(
                self.builder, self.node, self.name or store, self.key_serde, value_serde, None
            )
        return self._repartitioned

    def _store(self, name: str | None, default_prefix: str, value_serde: Serde) -> str:
        store_name = name or self.builder.generated_name(default_prefix)
        return self.builder.add_store(store_name, "key_value", self.key_serde, value_serde, timestamped=True)


class GroupedStream(_Grouped):
    """Records grouped by key. Aggregations return a Table updated on every input record.

    If the key changed upstream, the records first go through the repartition topic
    ``<application.id>-<name>-repartition`` so that each key lives in one task; several
    aggregations of one grouping share that topic.
    """

    def windowed_by(self, windows: Windows) -> TimeWindowedStream | SessionWindowedStream:
        """Aggregate per window: TimeWindows and SlidingWindows give a TimeWindowedStream,
        SessionWindows a SessionWindowedStream (see ``streamer.windows``)."""
        from streamer.dsl.windowed import windowed_by

        return windowed_by(self, windows)

    def count(self, name: str | None = None, *, value_serde: SerdeLike = None) -> Table:
        """Number of records per key (stored and emitted as JSON numbers unless told otherwise)."""
        serde = resolve_serde(value_serde, JSON)
        return self._aggregate("count", name, lambda: 0, lambda _k, _v, count: count + 1, serde)

    def reduce(self, reducer: Callable[[Any, Any], Any], name: str | None = None, *,
               value_serde: SerdeLike = None) -> Table:
        """``reducer(aggregate, value)`` per record; a key's first value is its first aggregate."""
        reducer = sync_function(reducer)
        serde = resolve_serde(value_serde, self.value_serde)
        return self._aggregate("reduce", name, None, lambda _k, value, agg: reducer(agg, value), serde)

    def aggregate(self, initializer: Callable[[], Any], aggregator: Callable[[Any, Any, Any], Any],
                  name: str | None = None, *, value_serde: SerdeLike = None) -> Table:
        """``aggregator(key, value, aggregate)`` per record, starting from ``initializer()``."""
        return self._aggregate("aggregate", name, initializer, aggregator, resolve_serde(value_serde, JSON))

    def _aggregate(self, op: str, name: str | None, initializer: Callable[[], Any] | None,
                   aggregator: Callable[[Any, Any, Any], Any], value_serde: Serde) -> Table:
        from streamer.dsl.table import Table

        store = self._store(name, f"{op}-store", value_serde)
        upstream = self._partitioned(store, self.value_serde, always=False)
        node = self.builder.add(StreamAggregateNode, [upstream], f"{store}-{op}", store=store,
                                initializer=sync_function(initializer), aggregator=sync_function(aggregator))
        return Table(self.builder, node, self.key_serde, value_serde, store)


class GroupedTable(_Grouped):
    """Table rows re-keyed into groups; aggregations take a row's old value out of its old group.

    Always goes through a repartition topic, shared by several aggregations of one grouping.
    """

    def count(self, name: str | None = None, *, value_serde: SerdeLike = None) -> Table:
        """Rows per group."""
        return self._aggregate("count", name, lambda: 0, lambda _k, _v, n: n + 1, lambda _k, _v, n: n - 1,
                               resolve_serde(value_serde, JSON))

    def reduce(self, adder: Callable[[Any, Any], Any], subtractor: Callable[[Any, Any], Any],
               name: str | None = None, *, value_serde: SerdeLike = None) -> Table:
        """``adder(aggregate, value)`` for a row joining a group, ``subtractor(aggregate, value)`` for one leaving."""
        adder, subtractor = sync_function(adder), sync_function(subtractor)
        return self._aggregate(
            "reduce", name, None,
            lambda _k, value, agg: adder(agg, value),
            lambda _k, value, agg: subtractor(agg, value),
            resolve_serde(value_serde, self.value_serde),
        )

    def aggregate(self, initializer: Callable[[], Any], adder: Callable[[Any, Any, Any], Any],
                  subtractor: Callable[[Any, Any, Any], Any], name: str | None = None, *,
                  value_serde: SerdeLike = None) -> Table:
        """``adder(key, value, aggregate)`` / ``subtractor(key, value, aggregate)``, from ``initializer()``."""
        return self._aggregate("aggregate", name, initializer, adder, subtractor, resolve_serde(value_serde, JSON))

    def _aggregate(self, op: str, name: str | None, initializer: Callable[[], Any] | None,
                   adder: Callable[[Any, Any, Any], Any], subtractor: Callable[[Any, Any, Any], Any],
                   value_serde: Serde) -> Table:
        from streamer.dsl.table import Table

        store = self._store(name, f"table-{op}-store", value_serde)
        upstream = self._partitioned(store, ChangeSerde(self.value_serde), always=True)
        node = self.builder.add(TableAggregateNode, [upstream], f"{store}-{op}", store=store,
                                initializer=sync_function(initializer), adder=sync_function(adder),
                                subtractor=sync_function(subtractor))
        return Table(self.builder, node, self.key_serde, value_serde, store)
