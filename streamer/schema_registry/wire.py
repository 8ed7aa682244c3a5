"""The Confluent Schema Registry wire format: magic byte 0, the schema id as 4 bytes big-endian, the payload.

Every client that speaks to a Confluent-compatible registry (Java's KafkaAvroSerializer,
confluent-kafka, Apicurio's ccompat mode) frames records so; Protobuf adds message indexes
at the start of the payload (``ProtobufSerde`` writes and reads them).
"""

from __future__ import annotations

import struct

from streamer.errors import DeserializationError

MAGIC_BYTE = 0
HEADER = struct.Struct(">BI")
HEADER_SIZE = HEADER.size


def header(schema_id: int) -> bytes:
    """The 5 bytes that start every record written with schema ``schema_id``."""
    return HEADER.pack(MAGIC_BYTE, schema_id)


def split(data: bytes) -> tuple[int, memoryview]:
    """``(schema id, payload)`` of a framed record; ``DeserializationError`` if it is not framed."""
    if len(data) < HEADER_SIZE:
        raise DeserializationError(
            f"{len(data)} bytes cannot be a Schema Registry record (5 header bytes at least): {bytes(data)!r}"
        )
    magic, schema_id = HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise DeserializationError(
            f"not in the Schema Registry wire format: the first byte is {data[0]:#04x}, not the magic byte 0 "
            f"(was it written without a registry serializer?): {bytes(data[:20])!r}"
        )
    return schema_id, memoryview(data)[HEADER_SIZE:]
