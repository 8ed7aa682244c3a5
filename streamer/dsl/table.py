"""Table: the latest value per key, and the stream of its updates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from streamer.dsl.functions import sync_function
from streamer.dsl.nodes import LogicalNode, TableFilterNode, TableGroupByNode, TableMapValuesNode, ToStreamNode
from streamer.errors import TopologyError
from streamer.serde import Serde, SerdeLike, resolve_serde

if TYPE_CHECKING:
    from streamer.dsl.builder import StreamsBuilder
    from streamer.dsl.grouped import GroupedTable
    from streamer.dsl.stream import Stream
    from streamer.windows.suppressed import Suppressed


class Table:
    """A changelog view of keyed data. ``store`` names the store that holds it, if materialized.

    Derived tables (filter, map_values) are computed on the fly from their parent's
    updates and are not materialized.
    """

    def __init__(self, builder: StreamsBuilder, node: LogicalNode, key_serde: Serde, value_serde: Serde,
                 store: str | None) -> None:
        self.builder = builder
        self.node = node
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.store = store

    def _derive(self, node_type: type[LogicalNode], name: str | None, value_serde: Serde | None = None,
                **fields: Any) -> Table:
        node = self.builder.add(node_type, [self.node], name, **fields)
        return Table(self.builder, node, self.key_serde, value_serde or self.value_serde, None)

    def filter(self, predicate: Callable[[Any, Any], Any], name: str | None = None) -> Table:
        """Rows for which ``predicate(key, value)`` holds; rows that stop matching are deleted."""
        return self._derive(TableFilterNode, name, predicate=sync_function(predicate))

    def filter_not(self, predicate: Callable[[Any, Any], Any], name: str | None = None) -> Table:
        return self._derive(TableFilterNode, name, predicate=sync_function(predicate), negate=True)

    def map_values(self, mapper: Callable[..., Any], name: str | None = None, *, with_key: bool = False,
                   value_serde: SerdeLike = None) -> Table:
        """Each value replaced by ``mapper(value)`` (``mapper(key, value)`` with ``with_key``)."""
        return self._derive(TableMapValuesNode, name, resolve_serde(value_serde, self.value_serde),
                            mapper=sync_function(mapper), with_key=with_key)

    def to_stream(self, name: str | None = None) -> Stream:
        """The updates as a stream of (key, new value); a deletion arrives as value None."""
        from streamer.dsl.stream import Stream

        node = self.builder.add(ToStreamNode, [self.node], name)
        return Stream(self.builder, node, self.key_serde, self.value_serde)

    def suppress(self, suppressed: Suppressed) -> Table:
        """A windowed table's final results only: ``suppress(Suppressed.until_window_closes())``.

        Each window's latest result is held back until stream time passes the window's
        end plus the aggregation's grace (sessions: plus the gap), then forwarded once;
        deletions are not forwarded.
        """
        from streamer.dsl.windowed import suppress

        return suppress(self, suppressed)

    def group_by(self, selector: Callable[[Any, Any], tuple[Any, Any]], *, key_serde: SerdeLike = None,
                 value_serde: SerdeLike = None, name: str | None = None) -> GroupedTable:
        """Group rows by ``selector(key, value) -> (group_key, value)``, for count/reduce/aggregate."""
        from streamer.dsl.grouped import GroupedTable

        node = self.builder.add(TableGroupByNode, [self.node], key_changed=True, selector=sync_function(selector))
        return GroupedTable(self.builder, node, resolve_serde(key_serde, self.key_serde),
                            resolve_serde(value_serde, self.value_serde), name)

    def join(self, other: Table, joiner: Callable[[Any, Any], Any], *,
             foreign_key_extractor: Callable[[Any], Any] | None = None, value_serde: SerdeLike = None,
             name: str | None = None) -> Table:
        """A table of ``joiner(value, other_value)`` for keys in both tables, kept up to date by both.

        With ``foreign_key_extractor(value)``, each row joins the row of ``other`` whose key
        the extractor gives (a foreign-key join); ``other`` may be partitioned differently.
        See docs/joins.md.
        """
        return _join_tables(self, other, joiner, foreign_key_extractor, value_serde, name, "inner")

    def left_join(self, other: Table, joiner: Callable[[Any, Any], Any], *,
                  foreign_key_extractor: Callable[[Any], Any] | None = None, value_serde: SerdeLike = None,
                  name: str | None = None) -> Table:
        """As ``join``, and rows of this table without a match too, with ``None`` for the other side."""
        return _join_tables(self, other, joiner, foreign_key_extractor, value_serde, name, "left")

    def outer_join(self, other: Table, joiner: Callable[[Any, Any], Any], *, value_serde: SerdeLike = None,
                   name: str | None = None) -> Table:
        """Rows of either table, with ``None`` for the side that lacks the key."""
        return _join_tables(self, other, joiner, None, value_serde, name, "outer")


def _join_tables(table: Table, other: Table, joiner: Callable[[Any, Any], Any],
                 foreign_key_extractor: Callable[[Any], Any] | None, value_serde: SerdeLike, name: str | None,
                 kind: str) -> Table:
    """Primary-key or foreign-key join; each lives in its own module of streamer.dsl."""
    if not isinstance(other, Table):
        raise TopologyError(f"a table joins another Table, got {other!r}; a stream joins a table with Stream.join")
    if foreign_key_extractor is not None:
        from streamer.dsl.foreign_key_join import join_on_foreign_key

        return join_on_foreign_key(table, other, joiner, foreign_key_extractor, value_serde, name, kind)
    from streamer.dsl.table_table_join import join_tables

    return join_tables(table, other, joiner, value_serde, name, kind)
