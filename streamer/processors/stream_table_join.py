"""Stream-table join: each stream record meets the table row of its key as the task has it now.

The task takes its input partitions in timestamp order (streamer.time), so "now" is the
stream record's time: the table holds every update older than the record that arrived
in time. Table updates themselves produce no output (Kafka Streams' KStreamKTableJoin).
"""

from __future__ import annotations

from typing import Any

from streamer.processors.api import Processor, ProcessorContext
from streamer.processors.value_getters import GetterSpec, Joiner, Row, ValueGetter, encode_keys
from streamer.record import Record
from streamer.serde import Serde


class StreamTableJoin(Processor):
    """``joiner(value, row)`` per stream record; ``left``: also records without a row (row None).

    A record with a null value is dropped, as is one with a null key, except that a left
    join passes a null-key record on joined with None (Kafka Streams since KIP-962). The
    result keeps the stream record's key and timestamp. Each distinct key of a batch is
    read once: the table cannot change while one partition's batch is processed.
    """

    def __init__(self, name: str, key_serde: Serde, table: GetterSpec, joiner: Joiner, left: bool) -> None:
        super().__init__(name)
        self.key_serde = key_serde
        self.table = table
        self.joiner = joiner
        self.left = left
        self.getter: ValueGetter | None = None

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        self.getter = self.table.build(context)

    def process(self, records: list[Record]) -> list[Record]:
        context, joiner, left = self.context, self.joiner, self.left
        assert context is not None
        encoded = encode_keys(self.key_serde, records, context, self.name)
        rows = self._rows(records, encoded)
        out: list[Record] = []
        emit = out.append
        for record, key_bytes in zip(records, encoded):
            key, value = record.key, record.value
            if value is None or (key is None and not left):
                context.record_dropped(self.name, record, "null value" if value is None else "null key")
                continue
            if key_bytes is not None:
                row = rows[key_bytes]
                if isinstance(row, Exception):
                    context.record_error(self.name, record, row)
                    continue
            elif key is None:
                row = None
            else:
                continue  # its key failed to serialize: the error handler has it
            other = None if row is None else row[0]
            if other is None and not left:
                continue
            try:
                joined = joiner(value, other)
            except Exception as error:
                context.record_error(self.name, record, error)
                continue
            emit(Record(key, joined, record.timestamp, record.headers, record.offset))
        return out

    def _rows(self, records: list[Record], encoded: list[bytes | None]) -> dict[bytes, Row | Exception]:
        """The row of each distinct key of the batch, by serialized key (the store's identity of a key).

        A derived table's function may raise on some row: then the keys are read one by
        one, and the error of a key is what its records get.
        """
        assert self.getter is not None
        keys: dict[bytes, Any] = {}
        for record, key_bytes in zip(records, encoded):
            if key_bytes is not None and record.value is not None and key_bytes not in keys:
                keys[key_bytes] = record.key
        if not keys:
            return {}
        try:
            return dict(zip(keys, self.getter.get_many(list(keys.values()), list(keys))))
        except Exception:
            return {key_bytes: self._row(key, key_bytes) for key_bytes, key in keys.items()}

    def _row(self, key: Any, key_bytes: bytes) -> Row | Exception:
        assert self.getter is not None
        try:
            return self.getter.get(key, key_bytes)
        except Exception as error:
            return error
