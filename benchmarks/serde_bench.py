"""Records per second of each value serde, writing and reading batches as sources and sinks do.

    .venv/bin/python -m benchmarks.serde_bench [--records 100000] [--batch 1000] [--repeat 5] [--registry URL]

Every serde gets the same order (two text fields, an int, a float, a list of two lines of
a text and an int) as its own type: a dict for ``json``, ``avro`` and ``json_schema``, a
dataclass, a pydantic model or a msgspec Struct for the typed serdes. The registry serdes
run with a pinned schema id (no registry: their hot path does no I/O once an id is known
either way). Each round runs every serde once, so all see the same load on a shared
machine; printed is the best round per serde, in thousands of records per second.
``--registry`` (e.g. a ``python -m streamer.schema_registry.devserver start``) adds
confluent-kafka's own Avro and JSON Schema serializer classes on the same records, to
compare with streamer's encoding of the same wire format.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pydantic

from streamer.schema_registry import AvroSerde, JsonSchemaSerde
from streamer.serde import JSON, Serde, deserialize_many, serialize_many
from streamer.typed_serde import typed


@dataclasses.dataclass
class LineDc:
    sku: str
    qty: int


@dataclasses.dataclass
class OrderDc:
    id: str
    customer: str
    amount: int
    price: float
    lines: list[LineDc]


class LineP(pydantic.BaseModel):
    sku: str
    qty: int


class OrderP(pydantic.BaseModel):
    id: str
    customer: str
    amount: int
    price: float
    lines: list[LineP]


class LineM(msgspec.Struct):
    sku: str
    qty: int


class OrderM(msgspec.Struct):
    id: str
    customer: str
    amount: int
    price: float
    lines: list[LineM]


AVRO_ORDER = {"type": "record", "name": "Order", "fields": [
    {"name": "id", "type": "string"},
    {"name": "customer", "type": "string"},
    {"name": "amount", "type": "int"},
    {"name": "price", "type": "double"},
    {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
        {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
]}
JSON_ORDER = {"type": "object", "required": ["id", "customer", "amount", "price", "lines"], "properties": {
    "id": {"type": "string"}, "customer": {"type": "string"}, "amount": {"type": "integer"},
    "price": {"type": "number"},
    "lines": {"type": "array", "items": {"type": "object", "required": ["sku", "qty"], "properties": {
        "sku": {"type": "string"}, "qty": {"type": "integer"}}}},
}}


def _order(i: int) -> dict[str, Any]:
    return {"id": f"order-{i}", "customer": f"customer-{i % 997}", "amount": i % 50, "price": i * 0.25,
            "lines": [{"sku": f"sku-{i % 31}", "qty": 1}, {"sku": f"sku-{i % 17}", "qty": 2}]}


def _typed_order(order: type, line: type) -> Callable[[dict[str, Any]], Any]:
    return lambda o: order(**{**o, "lines": [line(**x) for x in o["lines"]]})


#: name -> (serde, how a dict order becomes the serde's value type)
SERDES: dict[str, tuple[Serde, Callable[[dict[str, Any]], Any]]] = {
    "json (dicts)": (JSON, dict),
    "dataclass": (typed(OrderDc), _typed_order(OrderDc, LineDc)),
    "pydantic": (typed(OrderP), _typed_order(OrderP, LineP)),
    "msgspec": (typed(OrderM), _typed_order(OrderM, LineM)),
    "avro": (AvroSerde(None, AVRO_ORDER, schema_id=1), dict),
    "json_schema": (JsonSchemaSerde(None, JSON_ORDER, schema_id=2), dict),
}


class _Confluent:
    """confluent-kafka's serializer and deserializer classes as a serde, for the comparison."""

    def __init__(self, serializer: Any, deserializer: Any, topic: str) -> None:
        from confluent_kafka.serialization import MessageField, SerializationContext
        self._serializer, self._deserializer = serializer, deserializer
        self._context = SerializationContext(topic, MessageField.VALUE)

    def serialize(self, obj: Any) -> bytes | None:
        return self._serializer(obj, self._context)

    def deserialize(self, data: bytes | None) -> Any:
        return self._deserializer(data, self._context)


def _confluent_serdes(url: str) -> dict[str, tuple[Serde, Callable[[dict[str, Any]], Any]]]:
    import orjson
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer

    client = SchemaRegistryClient({"url": url})
    avro, json_schema = orjson.dumps(AVRO_ORDER).decode(), orjson.dumps(JSON_ORDER).decode()
    return {
        "confluent avro": (_Confluent(AvroSerializer(client, avro), AvroDeserializer(client), "bench-avro"), dict),
        "confluent json": (_Confluent(JSONSerializer(json_schema, client),
                                      JSONDeserializer(None, schema_registry_client=client), "bench-json"), dict),
    }


def _round(serde: Serde, batches: list[list[Any]], records: int) -> tuple[float, float]:
    """(write, read) records/s of one pass over ``batches``."""
    start = time.perf_counter()
    written = [serialize_many(serde, values) for values in batches]
    middle = time.perf_counter()
    for data in written:
        deserialize_many(serde, data)
    end = time.perf_counter()
    return records / (middle - start), records / (end - middle)


def measure(records: int, batch: int, repeat: int, registry: str | None = None) -> dict[str, tuple[float, float]]:
    """Best (write, read) records/s of each serde over ``repeat`` rounds."""
    serdes = {**SERDES, **(_confluent_serdes(registry) if registry else {})}
    orders = [_order(i) for i in range(records)]
    batches = {name: [[make(o) for o in orders[i:i + batch]] for i in range(0, records, batch)]
               for name, (_, make) in serdes.items()}
    best: dict[str, tuple[float, float]] = {name: (0.0, 0.0) for name in serdes}
    for _ in range(repeat):
        for name, (serde, _) in serdes.items():
            write, read = _round(serde, batches[name], records)
            best[name] = (max(best[name][0], write), max(best[name][1], read))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serde_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--registry", help="a Schema Registry url: also measure confluent-kafka's serializers")
    args = parser.parse_args(argv)
    results = measure(args.records, args.batch, args.repeat, args.registry)
    print(f"{'serde':<14} {'write k/s':>10} {'read k/s':>10}   ({args.records} records, batches of {args.batch}, "
          f"best of {args.repeat})")
    for name, (write, read) in results.items():
        print(f"{name:<14} {write / 1000:>10.0f} {read / 1000:>10.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
