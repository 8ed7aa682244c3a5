"""Confluent Schema Registry serdes: Avro, JSON Schema and Protobuf, in the registry's wire format.

    from streamer.schema_registry import SchemaRegistry
    registry = SchemaRegistry("http://127.0.0.1:8081")
    orders = builder.stream("orders", value_serde=registry.avro(ORDER_SCHEMA, subject="orders-value"))

Needs the extra ``schema-registry`` (confluent-kafka's registry client, fastavro, jsonschema-rs, protobuf).
See docs/serdes.md.
"""

from streamer.schema_registry.registry import SchemaRegistry
from streamer.schema_registry.serdes import AvroSerde, JsonSchemaSerde, ProtobufSerde, RegistrySerde
from streamer.schema_registry.wire import HEADER_SIZE, MAGIC_BYTE, header, split

__all__ = ["HEADER_SIZE", "MAGIC_BYTE", "AvroSerde", "JsonSchemaSerde", "ProtobufSerde", "RegistrySerde",
           "SchemaRegistry", "header", "split"]
