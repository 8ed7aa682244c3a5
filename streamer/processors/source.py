"""Turns fetched Kafka messages into records, with the source's serdes."""

from __future__ import annotations

from typing import Any

from streamer.errors import DeserializationError
from streamer.processors.api import Processor
from streamer.record import Record
from streamer.serde import Serde, deserialize_many


class Source(Processor):
    """Deserializes a fetched batch. Input items need key, value, timestamp, headers, offset.

    The whole batch is deserialized column by column; only if that raises is it
    redone message by message, so that a message that fails goes to the error handler
    as a ``DeserializationError`` and the rest of the batch is unaffected.
    """

    def __init__(self, name: str, key_serde: Serde, value_serde: Serde) -> None:
        super().__init__(name)
        self.key_serde = key_serde
        self.value_serde = value_serde

    def process(self, messages: list[Any]) -> list[Record]:
        try:
            keys = deserialize_many(self.key_serde, [m.key for m in messages])
            values = deserialize_many(self.value_serde, [m.value for m in messages])
        except Exception:
            return self._one_by_one(messages)
        return [Record(k, v, m.timestamp, m.headers, m.offset) for k, v, m in zip(keys, values, messages)]

    def _one_by_one(self, messages: list[Any]) -> list[Record]:
        """The slow path once a batch had a bad message: find it, hand it to the error handler."""
        out: list[Record] = []
        load_key, load_value = self.key_serde.deserialize, self.value_serde.deserialize
        for message in messages:
            try:
                key, value = load_key(message.key), load_value(message.value)
            except Exception as error:
                wrapped = DeserializationError(f"cannot deserialize message at offset {message.offset}: {error!r}")
                self.context.record_error(self.name, message, wrapped)
                continue
            out.append(Record(key, value, message.timestamp, message.headers, message.offset))
        return out
