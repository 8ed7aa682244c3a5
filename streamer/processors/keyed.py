"""Processors that key a store by their records' keys: keys serialized per batch, failures handled per record."""

from __future__ import annotations

from streamer.processors.api import Processor
from streamer.record import Record
from streamer.serde import Serde, serialize_many


class KeyedProcessor(Processor):
    """A processor whose state is found by the serialized record key."""

    def __init__(self, name: str, key_serde: Serde) -> None:
        super().__init__(name)
        self.key_serde = key_serde

    def encoded_keys(self, records: list[Record]) -> list[bytes | None]:
        """Serialized keys; None for a None key or one whose serialization failed (sent to the error handler).

        Keys are told apart by their serialized bytes, the identity the store and the
        changelog use (1, 1.0 and True are one Python dict key but three JSON keys). The
        batch is serialized in one call; only if that raises is it redone key by key.
        """
        try:
            return serialize_many(self.key_serde, [r.key for r in records])
        except Exception:
            return [self._encoded_key(record) for record in records]

    def _encoded_key(self, record: Record) -> bytes | None:
        if record.key is None:
            return None
        try:
            return self.key_serde.serialize(record.key)
        except Exception as error:
            self.context.record_error(self.name, record, error)
            return None
