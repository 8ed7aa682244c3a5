"""Schema Registry serdes against a real registry (Apicurio Registry on loopback, its Confluent-compatible API)
and, end to end, through a worker against the real broker.

Set STREAMER_TEST_SCHEMA_REGISTRY=url to use a registry you started yourself.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import orjson
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streamer import StreamsBuilder
from streamer.errors import DeserializationError, SchemaRegistryError
from streamer.schema_registry import SchemaRegistry, header
from streamer.schema_registry.devserver import RegistryServer
from tests.kafka_helpers import consume_all, produce
from tests.serde_helpers import protobuf_messages, while_worker_runs

ORDER = {"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "string"},
    {"name": "amount", "type": "int"},
]}
#: ORDER plus a field with a default: what a reader of ORDER v2 fills in for v1 records.
ORDER_V2 = {**ORDER, "fields": ORDER["fields"] + [{"name": "currency", "type": "string", "default": "EUR"}]}
ORDER_TEXT = orjson.dumps(ORDER).decode()
PAYMENT = {"type": "object", "properties": {"order": {"type": "string"}, "cents": {"type": "integer"}},
           "required": ["order", "cents"]}


@pytest.fixture(scope="module")
def registry_url() -> Iterator[str]:
    external = os.environ.get("STREAMER_TEST_SCHEMA_REGISTRY")
    if external:
        yield external
        return
    with RegistryServer() as server:
        yield server.url


def _subject(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}-value"


def test_the_schema_is_registered_once_at_the_first_write(registry_url: str) -> None:
    registry, subject = SchemaRegistry(registry_url), _subject("orders")
    serde = registry.avro(ORDER, subject=subject)
    data = serde.serialize({"id": "o-1", "amount": 3})
    assert data[:5] == header(serde.schema_id)
    client = SchemaRegistryClient({"url": registry_url})
    assert client.get_latest_version(subject).schema_id == serde.schema_id
    again = SchemaRegistry(registry_url).avro(ORDER, subject=subject, auto_register=False)
    assert again.schema_id == serde.schema_id  # looked up, not registered anew
    assert again.deserialize(data) == {"id": "o-1", "amount": 3}


def test_a_schema_not_registered_is_refused_without_auto_register(registry_url: str) -> None:
    serde = SchemaRegistry(registry_url).avro(ORDER, subject=_subject("unknown"), auto_register=False)
    with pytest.raises(SchemaRegistryError, match="has no such AVRO schema; register it first"):
        serde.serialize({"id": "o-1", "amount": 3})


def test_an_unknown_schema_id_is_the_records_fault(registry_url: str) -> None:
    with pytest.raises(DeserializationError, match="schema id 987654 is not in the registry"):
        SchemaRegistry(registry_url).avro().deserialize(header(987654) + b"\x00")


def test_avro_bytes_agree_with_confluent_kafkas_own_serializer(registry_url: str) -> None:
    registry, subject = SchemaRegistry(registry_url), _subject("interop")
    topic = subject.removesuffix("-value")
    context = SerializationContext(topic, MessageField.VALUE)
    ours = registry.avro(ORDER, subject=subject)
    theirs_out = AvroSerializer(registry.client, ORDER_TEXT)(dict(id="o-1", amount=3), context)
    assert ours.serialize({"id": "o-1", "amount": 3}) == theirs_out
    assert ours.deserialize(theirs_out) == {"id": "o-1", "amount": 3}
    assert AvroDeserializer(registry.client)(ours.serialize({"id": "o-2", "amount": 4}), context) == \
        {"id": "o-2", "amount": 4}


def test_json_schema_bytes_agree_with_confluent_kafkas_own_serializer(registry_url: str) -> None:
    registry, subject = SchemaRegistry(registry_url), _subject("payments")
    context = SerializationContext(subject.removesuffix("-value"), MessageField.VALUE)
    ours = registry.json_schema(PAYMENT, subject=subject)
    data = ours.serialize({"order": "o-1", "cents": 300})
    assert JSONDeserializer(None, schema_registry_client=registry.client)(data, context) == \
        {"order": "o-1", "cents": 300}
    theirs = JSONSerializer(orjson.dumps(PAYMENT).decode(), registry.client)({"order": "o-2", "cents": 1}, context)
    assert registry.json_schema().deserialize(theirs) == {"order": "o-2", "cents": 1}
    with pytest.raises(DeserializationError, match="field 'cents': \"many\" is not of type \"integer\""):
        registry.json_schema().deserialize(data[:5] + b'{"order": "o-1", "cents": "many"}')


def test_protobuf_bytes_agree_with_confluent_kafkas_own_serializer(registry_url: str) -> None:
    messages = protobuf_messages()
    order, line, payment = (messages[name] for name in ("Order", "Order.Line", "Payment"))
    registry, subject = SchemaRegistry(registry_url), _subject("protobuf")
    context = SerializationContext(subject.removesuffix("-value"), MessageField.VALUE)
    options = {"use.deprecated.format": False}
    value = order(id="o-1", amount=3, lines=[line(sku="a"), line(sku="b")])
    ours = registry.protobuf(order, subject=subject)
    theirs = ProtobufSerializer(order, registry.client, options)(value, context)
    assert ours.serialize(value) == theirs  # the same schema id (one registered schema), indexes and payload
    assert ours.deserialize(theirs) == value
    assert ProtobufDeserializer(order, options)(ours.serialize(value), context) == value
    nested = ProtobufSerializer(line, registry.client, options)(line(sku="c"), context)  # the same file
    assert registry.protobuf(line, subject=subject).serialize(line(sku="c")) == nested  # indexes [0, 0]
    with pytest.raises(DeserializationError, match="is message shop.Order of its schema; this serde reads "
                                                   "shop.Payment"):
        registry.protobuf(payment, subject=subject).deserialize(theirs)
    with pytest.raises(DeserializationError, match="is a AVRO schema; ProtobufSerde reads PROTOBUF"):
        ours.deserialize(registry.avro(ORDER, subject=_subject("avro")).serialize({"id": "o", "amount": 1}))


def test_records_of_an_older_schema_are_read_into_the_newer_one(registry_url: str) -> None:
    registry, subject = SchemaRegistry(registry_url), _subject("evolving")
    old = registry.avro(ORDER, subject=subject).serialize({"id": "o-1", "amount": 3})
    new_serde = registry.avro(ORDER_V2, subject=subject)
    new = new_serde.serialize({"id": "o-2", "amount": 4, "currency": "USD"})
    assert new[:5] != old[:5]
    assert new_serde.deserialize_many([old, new]) == [{"id": "o-1", "amount": 3, "currency": "EUR"},
                                                      {"id": "o-2", "amount": 4, "currency": "USD"}]
    assert registry.avro().deserialize(old) == {"id": "o-1", "amount": 3}  # no reader schema: as written


@pytest.mark.broker
async def test_avro_in_json_schema_out_through_a_worker(kafka_bootstrap, new_topic, registry_url, tmp_path) -> None:
    source, output = await new_topic("sr-orders", partitions=2), await new_topic("sr-payments", partitions=2)
    dead = await new_topic("sr-dlq", partitions=1)
    registry = SchemaRegistry(registry_url)
    orders = registry.avro(ORDER, subject=f"{source}-value")
    rows = [(f"k{i}".encode(), orders.serialize({"id": f"o{i}", "amount": i})) for i in range(30)]
    rows[11] = (b"k11", b'{"id": "o11", "amount": 11}')  # plain JSON, not framed: dead-lettered
    await produce(kafka_bootstrap, source, rows)

    builder = StreamsBuilder()
    (builder.stream(source, key_serde="str", value_serde=SchemaRegistry(registry_url).avro())
        .map_values(lambda order: {"order": order["id"], "cents": order["amount"] * 100})
        .to(output, key_serde="str", value_serde=SchemaRegistry(registry_url).json_schema(
            PAYMENT, subject=f"{output}-value")))
    out, [bad] = await while_worker_runs(
        builder.build(), kafka_bootstrap, tmp_path,
        asyncio.gather(consume_all(kafka_bootstrap, output, 29, timeout=60), consume_all(kafka_bootstrap, dead, 1)),
        deserialization_error_handler="dead_letter", dead_letter_topic=dead)
    theirs = JSONDeserializer(None, schema_registry_client=registry.client)
    payments = [theirs(record.value, SerializationContext(output, MessageField.VALUE)) for record in out]
    assert sorted(p["cents"] for p in payments) == [i * 100 for i in range(30) if i != 11]
    assert bad.value == rows[11][1]
    assert b"not the magic byte 0" in dict(bad.headers)["streamer.error.message"]


@pytest.mark.broker
async def test_protobuf_through_a_worker(kafka_bootstrap, new_topic, registry_url, tmp_path) -> None:
    messages = protobuf_messages()
    order, line, payment = (messages[name] for name in ("Order", "Order.Line", "Payment"))
    source, output = await new_topic("pb-orders", partitions=2), await new_topic("pb-payments", partitions=2)
    registry = SchemaRegistry(registry_url)
    orders = registry.protobuf(order, subject=f"{source}-value")
    await produce(kafka_bootstrap, source, [(f"k{i}".encode(), orders.serialize(
        order(id=f"o{i}", amount=i, lines=[line(sku="s")] * (i % 3)))) for i in range(20)])

    builder = StreamsBuilder()
    (builder.stream(source, key_serde="str", value_serde=registry.protobuf(order, subject=f"{source}-value"))
        .map_values(lambda o: payment(order=o.id, cents=o.amount * 100 * len(o.lines)))
        .to(output, key_serde="str", value_serde=registry.protobuf(payment, subject=f"{output}-value")))
    out = await while_worker_runs(builder.build(), kafka_bootstrap, tmp_path,
                                  consume_all(kafka_bootstrap, output, 20, timeout=60))
    theirs = ProtobufDeserializer(payment, {"use.deprecated.format": False})
    payments = [theirs(record.value, SerializationContext(output, MessageField.VALUE)) for record in out]
    assert sorted((p.order, p.cents) for p in payments) == sorted((f"o{i}", i * 100 * (i % 3)) for i in range(20))
