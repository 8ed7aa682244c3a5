"""The stream side of a join with a global table: look each record's row up in the worker's copy.

The global store holds the table topic's key and value bytes as they are, so a lookup
serializes the selected key and deserializes the row it finds. It reads the table as it
is when the record is processed: the global updater changes it between task batches,
never in the middle of applying one of its own fetches.

Kafka Streams' rules (KStreamKTableJoinProcessor, which global joins share): a record
with a None value is dropped; one whose selected key is None is dropped by an inner
join and joined with None by a left join; the record's own key plays no part (it may be
None). A row that is not there drops the record in an inner join and joins it with None
in a left join.
"""

from __future__ import annotations

from typing import Any, Callable

from streamer.processors.api import Processor, ProcessorContext
from streamer.record import Record
from streamer.serde import Serde


class GlobalTableJoin(Processor):
    """``joiner(value, row)`` per record; the record keeps its key, timestamp and headers."""

    def __init__(self, name: str, store_name: str, key_serde: Serde, value_serde: Serde,
                 key_selector: Callable[[Any, Any], Any], joiner: Callable[[Any, Any], Any], left: bool) -> None:
        super().__init__(name)
        self.store_name = store_name
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.key_selector = key_selector
        self.joiner = joiner
        self.left = left
        self._get: Callable[[Any], bytes | None] | None = None

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self._get = context.get_store(self.store_name).get

    def process(self, records: list[Record]) -> list[Record]:
        context, get = self.context, self._get
        assert context is not None and get is not None
        out: list[Record] = []
        emit = out.append
        select, joiner, left = self.key_selector, self.joiner, self.left
        serialize, load = self.key_serde.serialize, self.value_serde.deserialize
        for record in records:
            value = record.value
            if value is None:
                context.record_dropped(self.name, record, "null value")
                continue
            try:
                table_key = select(record.key, value)
                if table_key is None:
                    if not left:
                        context.record_dropped(self.name, record, "null join key")
                        continue
                    row = None
                else:
                    data = get(serialize(table_key))
                    row = None if data is None else load(data)
                    if row is None and not left:
                        continue
                emit(Record(record.key, joiner(value, row), record.timestamp, record.headers, record.offset))
            except Exception as error:
                context.record_error(self.name, record, error)
        return out
