"""Stream-table join: each stream record meets the table row of its key as the task has it now.

The task takes its input partitions in timestamp order (streamer.time), so "now" is the
stream record's time: the table holds every update older than the record that arrived
in time. Table updates themselves produce no output (Kafka Streams' KStreamKTableJoin).
"""

from __future__ import annotations

from typing import Any

from streamer.processors.api import Processor, ProcessorContext
from streamer.processors.value_getters import GetterSpec, Joiner, ValueGetter, encode_keys
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
        context, joiner, left, name = self.context, self.joiner, self.left, self.name
        assert context is not None
        encoded = encode_keys(self.key_serde, records, context, name)
        rows, failed = self._rows(records, encoded)
        row_of = rows.get
        out: list[Record] = []
        emit = out.append
        for record, key_bytes in zip(records, encoded):
            value = record.value
            if value is None or key_bytes is None:
                if value is None or not left:
                    if value is None or record.key is None:
                        context.record_dropped(name, record, "null value" if value is None else "null key")
                    continue  # else its key failed to serialize: the error handler has it
                if record.key is not None:
                    continue
                other = None
            else:
                other = row_of(key_bytes)
                if other is None:
                    if failed and key_bytes in failed:
                        context.record_error(name, record, failed[key_bytes])
                        continue
                    if not left:
                        continue
            try:
                joined = joiner(value, other)
            except Exception as error:
                context.record_error(name, record, error)
                continue
            emit(Record(record.key, joined, record.timestamp, record.headers, record.offset))
        return out

    def _rows(self, records: list[Record],
              encoded: list[bytes | None]) -> tuple[dict[bytes, Any], dict[bytes, Exception]]:
        """The row value of each distinct key of the batch, by serialized key (the store's identity of a key).

        A derived table's function may raise on some row: then the keys are read one by
        one, and the error of a key (second dict) is what its records get.
        """
        assert self.getter is not None
        keys: dict[bytes, Any] = {}
        for record, key_bytes in zip(records, encoded):
            if key_bytes is not None and key_bytes not in keys:
                keys[key_bytes] = record.key
        if not keys:
            return {}, {}
        try:
            found = self.getter.get_many(list(keys.values()), list(keys))
        except Exception:
            return self._rows_one_by_one(keys)
        return {key_bytes: row[0] for key_bytes, row in zip(keys, found) if row is not None}, {}

    def _rows_one_by_one(self, keys: dict[bytes, Any]) -> tuple[dict[bytes, Any], dict[bytes, Exception]]:
        assert self.getter is not None
        rows: dict[bytes, Any] = {}
        failed: dict[bytes, Exception] = {}
        for key_bytes, key in keys.items():
            try:
                row = self.getter.get(key, key_bytes)
            except Exception as error:
                failed[key_bytes] = error
                continue
            if row is not None:
                rows[key_bytes] = row[0]
        return rows, failed
