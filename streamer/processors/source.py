"""Turns fetched Kafka messages into records, with the source's serdes and timestamp extractor."""

from __future__ import annotations

from typing import Any

from streamer.errors import DeserializationError, InvalidTimestampError, SchemaRegistryError
from streamer.processors.api import Processor
from streamer.record import Record
from streamer.serde import Serde, deserialize_many
from streamer.time.extractors import TimestampExtractor, all_valid, invalid_reason


class Source(Processor):
    """Deserializes a fetched batch. Input items need key, value, timestamp, headers, offset.

    The whole batch is deserialized and its event times taken column by column; only
    if that fails (a serde raises, a timestamp is invalid) is it redone message by
    message, so that a message that fails goes to the error handler as a
    ``DeserializationError`` (``InvalidTimestampError`` for its time) and the rest of
    the batch is unaffected. The task calls ``deserialize`` itself (it needs the event
    times for stream time and ordering) and hands the records to the source's children.
    """

    def __init__(self, name: str, key_serde: Serde, value_serde: Serde,
                 timestamp_extractor: TimestampExtractor | None = None) -> None:
        super().__init__(name)
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.timestamp_extractor = timestamp_extractor

    def process(self, messages: list[Any]) -> list[Record]:
        return self.deserialize(messages)[0]

    def deserialize(self, messages: list[Any]) -> tuple[list[Record], list[int]]:
        """Records of the valid messages and their event times, in input order."""
        try:
            keys = deserialize_many(self.key_serde, [m.key for m in messages])
            values = deserialize_many(self.value_serde, [m.value for m in messages])
            extract = self.timestamp_extractor
            if extract is None:  # Kafka's timestamps are ints; only their sign needs a look
                timestamps = [m.timestamp for m in messages]
                valid = min(timestamps) >= 0
            else:
                timestamps = [extract(k, v, m.timestamp) for k, v, m in zip(keys, values, messages)]
                valid = all_valid(timestamps)
        except Exception:
            return self._one_by_one(messages)
        if not valid:
            return self._one_by_one(messages)
        records = [Record(k, v, t, m.headers, m.offset) for k, v, t, m in zip(keys, values, timestamps, messages)]
        return records, timestamps

    def _one_by_one(self, messages: list[Any]) -> tuple[list[Record], list[int]]:
        """The slow path once a batch had a bad message: find it, hand it to the error handler."""
        records: list[Record] = []
        timestamps: list[int] = []
        load_key, load_value = self.key_serde.deserialize, self.value_serde.deserialize
        extract = self.timestamp_extractor
        for message in messages:
            try:
                key, value = load_key(message.key), load_value(message.value)
            except SchemaRegistryError:
                raise  # the registry failed, not the record: no handler may skip records for it
            except Exception as error:
                wrapped = DeserializationError(f"cannot deserialize message at offset {message.offset}: {error!r}")
                self.context.record_error(self.name, message, wrapped)
                continue
            timestamp: Any = message.timestamp
            try:
                if extract is not None:
                    timestamp = extract(key, value, message.timestamp)
                reason = invalid_reason(timestamp, extract is not None)
            except Exception as error:
                reason = f"the timestamp extractor raised {error!r}"
            if reason is not None:
                invalid = InvalidTimestampError(f"message at offset {message.offset} has no valid event time: {reason}")
                self.context.record_error(self.name, message, invalid)
                continue
            records.append(Record(key, value, timestamp, message.headers, message.offset))
            timestamps.append(timestamp)
        return records, timestamps
