"""Table-table join on the primary key: one processor per side, each reading the other side's row.

An update of either table joins the other table's current row and is forwarded as a
``Change(new, old)`` of the joined table: ``new`` from the update's new value, ``old``
from the value it replaced, both joined with the same row of the other side. So a
downstream ``group_by(...).aggregate(adder, subtractor)`` takes exactly the old joined
value back out. The update's timestamp is the later of the update's and the other row's
(Kafka Streams' KTableKTableInnerJoin, LeftJoin, RightJoin and OuterJoin).
"""

from __future__ import annotations

from typing import Any, Literal

from streamer.processors.api import Processor, ProcessorContext
from streamer.processors.change import Change
from streamer.processors.value_getters import GetterSpec, Joiner, JoinKind, ValueGetter, encode_keys
from streamer.record import Record
from streamer.serde import Serde

#: Which input this processor takes updates of.
Side = Literal["left", "right"]


class TableJoinSide(Processor):
    """Updates of one side of ``left.<kind>_join(right, joiner)``, joined with the other side's rows.

    What each kind forwards for an update ``Change(new, old)`` when the other side's row
    is ``other``:

    - inner: nothing without ``other``; else ``joiner`` of new and of old with it (a
      missing new or old stays None, so a deleted row becomes a delete).
    - left, an update of the left table: ``joiner(new, other)`` (other may be None);
      nothing for a delete of a row that never existed and has no other row.
    - left, an update of the right table: nothing without a left row; else the left
      row joined with the new and with the old right value (None for a deleted one).
    - outer: as the left join's left side, on both sides; only a side with neither a
      value nor an other row stays None.
    """

    def __init__(self, name: str, key_serde: Serde, other: GetterSpec, joiner: Joiner, kind: JoinKind,
                 side: Side) -> None:
        super().__init__(name)
        self.key_serde = key_serde
        self.other = other
        self.joiner = joiner
        self.kind = kind
        self.side = side
        self.getter: ValueGetter | None = None

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.getter = self.other.build(context)

    def _join(self, this: Any, other: Any) -> Any:
        return self.joiner(this, other) if self.side == "left" else self.joiner(other, this)

    def process(self, records: list[Record]) -> list[Record]:
        context = self.context
        assert context is not None and self.getter is not None
        encoded = encode_keys(self.key_serde, records, context, self.name)
        keys: dict[bytes, Any] = {}
        for record, key_bytes in zip(records, encoded):
            if key_bytes is not None and key_bytes not in keys:
                keys[key_bytes] = record.key
        try:
            rows = dict(zip(keys, self.getter.get_many(list(keys.values()), list(keys)))) if keys else {}
        except Exception:
            rows = {}  # a derived side's function raised: read key by key, errors go per record
        join = self._join
        # An inner join's sides and the left join's right side need the other row; the left
        # join's right side and the outer join (where the other row exists) join a missing value too.
        needs_other = self.kind == "inner" or (self.kind == "left" and self.side == "right")
        pads = self.kind == "left" and self.side == "right"
        outer = self.kind == "outer"
        out: list[Record] = []
        for record, key_bytes in zip(records, encoded):
            if key_bytes is None:
                if record.key is None:
                    context.record_dropped(self.name, record, "null key")
                continue
            change = record.value
            try:
                row = rows[key_bytes] if key_bytes in rows else self.getter.get(record.key, key_bytes)
                other = None if row is None else row[0]
                if other is None and (needs_other or (change.new is None and change.old is None)):
                    continue
                pad = pads or (outer and other is not None)
                new = join(change.new, other) if change.new is not None or pad else None
                old = join(change.old, other) if change.old is not None or pad else None
            except Exception as error:
                context.record_error(self.name, record, error)
                continue
            timestamp = record.timestamp if other is None or row[1] < record.timestamp else row[1]  # type: ignore[index]
            out.append(Record(record.key, Change(new, old), timestamp, record.headers, record.offset))
        return out
