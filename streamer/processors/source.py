"""Turns fetched Kafka messages into records, with the source's serdes."""

from __future__ import annotations

from typing import Any

from streamer.errors import SerializationError
from streamer.processors.api import Processor
from streamer.record import Record
from streamer.serde import BytesSerde, Serde


class Source(Processor):
    """Deserializes a fetched batch. Input items need key, value, timestamp, headers, offset.

    A message that fails to deserialize goes to the error handler as a
    ``SerializationError``; the rest of the batch is unaffected.
    """

    def __init__(self, name: str, key_serde: Serde, value_serde: Serde) -> None:
        super().__init__(name)
        self.key_serde = key_serde
        self.value_serde = value_serde

    def process(self, messages: list[Any]) -> list[Record]:
        out: list[Record] = []
        emit = out.append
        raw_keys = isinstance(self.key_serde, BytesSerde)
        raw_values = isinstance(self.value_serde, BytesSerde)
        load_key = self.key_serde.deserialize
        load_value = self.value_serde.deserialize
        for message in messages:
            try:
                key = message.key if raw_keys else load_key(message.key)
                value = message.value if raw_values else load_value(message.value)
            except Exception as error:
                wrapped = SerializationError(f"cannot deserialize message at offset {message.offset}: {error!r}")
                self.context.record_error(self.name, message, wrapped)
                continue
            emit(Record(key, value, message.timestamp, message.headers, message.offset))
        return out
