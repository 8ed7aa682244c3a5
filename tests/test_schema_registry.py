"""Schema Registry serdes without a registry: the wire format with a pinned schema id, the errors, and what
happens when the registry does not answer (a closed loopback port, no fake server)."""

from __future__ import annotations

import struct

import orjson
import pytest

from streamer import StreamsBuilder
from streamer.errors import DeserializationError, ProcessingError, SchemaRegistryError, SerializationError
from streamer.schema_registry import AvroSerde, JsonSchemaSerde, ProtobufSerde, SchemaRegistry, header, split
from streamer.testing import TopologyTestDriver
from tests.serde_helpers import protobuf_messages

ORDER = {"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "string"},
    {"name": "amount", "type": "int"},
]}
ORDER_JSON = {"type": "object", "properties": {"id": {"type": "string"}, "amount": {"type": "integer"}},
              "required": ["id", "amount"]}


def _zigzag(n: int) -> bytes:
    """One Avro int as the spec writes it (zig-zag, then base-128 varint), to check fastavro's bytes."""
    value, out = (n << 1) ^ (n >> 63), bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def test_the_header_is_magic_byte_zero_and_the_id_big_endian() -> None:
    assert header(7) == b"\x00\x00\x00\x00\x07"
    assert header(0x01020304) == b"\x00\x01\x02\x03\x04"
    schema_id, payload = split(b"\x00\x00\x00\x01\x00abc")
    assert (schema_id, bytes(payload)) == (256, b"abc")


@pytest.mark.parametrize(("data", "message"), [
    (b"\x00\x00\x01", "3 bytes cannot be a Schema Registry record"),
    (b'{"id": "o-1"}', "first byte is 0x7b, not the magic byte 0"),
])
def test_records_not_in_the_wire_format_are_deserialization_errors(data: bytes, message: str) -> None:
    with pytest.raises(DeserializationError, match=message):
        split(data)
    with pytest.raises(DeserializationError, match=message):
        AvroSerde(None, ORDER, schema_id=7).deserialize(data)


def test_avro_with_a_pinned_id_writes_the_wire_format() -> None:
    serde = AvroSerde(None, ORDER, schema_id=42)
    data = serde.serialize({"id": "o-1", "amount": -3})
    assert data == struct.pack(">bI", 0, 42) + _zigzag(3) + b"o-1" + _zigzag(-3)
    assert serde.deserialize(data) == {"id": "o-1", "amount": -3}
    assert serde.deserialize_many([data, None]) == [{"id": "o-1", "amount": -3}, None]
    assert serde.serialize(None) is None and serde.schema_id == 42


def test_avro_errors_say_what_does_not_fit() -> None:
    serde = AvroSerde(None, ORDER, schema_id=42)
    with pytest.raises(SerializationError, match=r"Order.amount is <three> of type <class 'str'> expected int"):
        serde.serialize({"id": "o-1", "amount": "three"})
    with pytest.raises(DeserializationError, match="Avro payload of 2 bytes does not decode with schema id 42"):
        serde.deserialize(header(42) + b"\x06o")
    with pytest.raises(DeserializationError, match="schema id 43 is not this serde's pinned id 42"):
        serde.deserialize(header(43) + b"\x00")
    with pytest.raises(SerializationError, match="not an Avro schema"):
        AvroSerde(None, {"type": "record", "name": "Bad", "fields": [{"name": "x", "type": "nope"}]}, schema_id=1)


def test_json_schema_with_a_pinned_id_validates_both_ways() -> None:
    serde = JsonSchemaSerde(None, ORDER_JSON, subject="orders-value", schema_id=9)
    data = serde.serialize({"id": "o-1", "amount": 3})
    assert data[:5] == b"\x00\x00\x00\x00\x09" and orjson.loads(data[5:]) == {"id": "o-1", "amount": 3}
    assert serde.deserialize(data) == {"id": "o-1", "amount": 3}
    with pytest.raises(DeserializationError, match="field 'amount': \"x\" is not of type \"integer\""):
        serde.deserialize(header(9) + b'{"id": "o-1", "amount": "x"}')
    with pytest.raises(DeserializationError, match='"amount" is a required property'):
        serde.deserialize(header(9) + b'{"id": "o-1"}')
    with pytest.raises(DeserializationError, match="is not valid JSON"):
        serde.deserialize(header(9) + b"{nope")
    with pytest.raises(SerializationError, match="cannot write .* field 'id': 5 is not of type \"string\""):
        serde.serialize({"id": 5, "amount": 3})


def test_a_serde_without_registry_or_schema_cannot_be_built() -> None:
    with pytest.raises(SerializationError, match="needs a SchemaRegistry, or a pinned schema_id"):
        AvroSerde(None, ORDER)
    with pytest.raises(SerializationError, match="without a registry needs the schema"):
        JsonSchemaSerde(None, schema_id=3)


def test_writing_needs_a_schema_and_a_subject() -> None:
    registry = SchemaRegistry("http://127.0.0.1:1")
    with pytest.raises(SerializationError, match="without a schema, so it only reads"):
        registry.avro().serialize({"id": "o-1"})
    with pytest.raises(SerializationError, match="needs subject="):
        registry.avro(ORDER).serialize({"id": "o-1", "amount": 1})


def _closed_port_registry() -> SchemaRegistry:
    """A registry url nothing listens on: what a worker sees while the registry is down."""
    return SchemaRegistry("http://127.0.0.1:1", timeout_s=2, config={"max.retries": 0})


def test_a_registry_that_does_not_answer_is_a_schema_registry_error() -> None:
    serde = _closed_port_registry().avro(ORDER, subject="orders-value")
    with pytest.raises(SchemaRegistryError, match="did not answer when asked to register a AVRO schema"):
        serde.serialize({"id": "o-1", "amount": 1})
    with pytest.raises(SchemaRegistryError, match="did not answer when asked to fetch schema id 5"):
        serde.deserialize(header(5) + b"\x00")


def _orders(value_serde: AvroSerde) -> StreamsBuilder:
    builder = StreamsBuilder()
    (builder.stream("orders", key_serde="str", value_serde=value_serde)
        .map_values(lambda order: order["amount"])
        .to("amounts", key_serde="str", value_serde="int"))
    return builder


def test_a_bad_avro_record_goes_to_the_dead_letter_topic() -> None:
    serde = AvroSerde(None, ORDER, schema_id=42)
    settings = {"deserialization_error_handler": "dead_letter", "dead_letter_topic": "bad"}
    with TopologyTestDriver(_orders(serde).build(), **settings) as driver:
        driver.pipe_raw("orders", b"a", serde.serialize({"id": "a", "amount": 2}))
        driver.pipe_raw("orders", b"b", b'{"id": "b", "amount": 3}')
        driver.pipe_raw("orders", b"c", serde.serialize({"id": "c", "amount": 4}))
        assert driver.read_output("amounts") == [("a", 2), ("c", 4)]
        [dead] = driver.read_records("bad")
    assert dead.value == b'{"id": "b", "amount": 3}'
    assert b"not the magic byte 0" in dict(dead.headers)["streamer.error.message"]


def test_a_registry_that_does_not_answer_fails_the_task_under_every_policy() -> None:
    """Skipping records because the registry is down would lose them: the task fails instead."""
    settings = {"deserialization_error_handler": "log_and_continue"}
    with TopologyTestDriver(_orders(_closed_port_registry().avro(ORDER)).build(), **settings) as driver:
        with pytest.raises(SchemaRegistryError, match="did not answer"):
            driver.pipe_raw("orders", b"a", header(5) + b"\x02a\x04")
    with TopologyTestDriver(_orders(_closed_port_registry().avro(ORDER)).build(), **settings) as driver:
        driver.pipe_raw("orders", b"a", b"not framed")  # the record's own fault: skipped
        assert driver.read_output("amounts") == []


def test_under_fail_a_bad_record_stops_the_task() -> None:
    with TopologyTestDriver(_orders(AvroSerde(None, ORDER, schema_id=42)).build()) as driver:
        with pytest.raises(ProcessingError, match="does not decode with schema id 42"):
            driver.pipe_raw("orders", b"a", header(42) + b"\x06o")


def test_protobuf_frames_each_message_by_its_indexes_in_the_file() -> None:
    messages = protobuf_messages()
    order, line, payment = (messages[name] for name in ("Order", "Order.Line", "Payment"))
    serde = ProtobufSerde(None, order, schema_id=7)
    value = order(id="o-1", amount=3, lines=[line(sku="a")])
    data = serde.serialize(value)
    assert data == header(7) + b"\x00" + value.SerializeToString()  # the first message: one 0
    assert serde.deserialize(data) == value and serde.deserialize(None) is None
    # Confluent's framing: the count, then each index, as zigzag varints
    assert ProtobufSerde(None, line, schema_id=7).serialize(line(sku="a"))[5:8] == b"\x04\x00\x00"  # [0, 0]
    assert ProtobufSerde(None, payment, schema_id=7).serialize(payment(cents=1))[5:7] == b"\x02\x02"  # [1]


def test_protobuf_errors_say_what_does_not_fit() -> None:
    messages = protobuf_messages()
    serde = ProtobufSerde(None, messages["Order"], schema_id=7)
    with pytest.raises(SerializationError, match="writes Order messages, not Payment"):
        serde.serialize(messages["Payment"](cents=1))
    with pytest.raises(SerializationError, match="takes a generated Protobuf message class"):
        ProtobufSerde(None, dict, schema_id=7)
    payment = ProtobufSerde(None, messages["Payment"], schema_id=7).serialize(messages["Payment"](cents=1))
    with pytest.raises(DeserializationError, match="is message shop.Payment of its schema; this serde reads shop.Or"):
        serde.deserialize(payment)
    with pytest.raises(DeserializationError, match="ends inside its Protobuf message indexes"):
        serde.deserialize(header(7) + b"\x04\x00")
    with pytest.raises(DeserializationError, match="does not decode as shop.Order"):
        serde.deserialize(header(7) + b"\x00\x0a\xff")  # field 1, a length running past the end
    with pytest.raises(DeserializationError, match="schema id 8 is not this serde's pinned id 7"):
        serde.deserialize(header(8) + b"\x00")


def test_a_protobuf_file_that_imports_others_is_refused() -> None:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

    file = descriptor_pb2.FileDescriptorProto(name="shop/at.proto", package="shop", syntax="proto3",
                                              dependency=["google/protobuf/timestamp.proto"])
    event = file.message_type.add(name="Event")
    event.field.add(name="at", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, type_name=".google.protobuf.Timestamp")
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    event_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Event"))
    with pytest.raises(SerializationError, match="imports google/protobuf/timestamp.proto: schema references"):
        ProtobufSerde(None, event_class, schema_id=7)
