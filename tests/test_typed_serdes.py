"""Typed value serdes (dataclass, pydantic, msgspec): round trips, errors that name the field,
the deserialization handler in the test driver, and one app end to end against the broker."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import re
import subprocess
import sys
import uuid
from typing import Any, Literal, Optional

import msgspec
import orjson
import pydantic
import pytest

from streamer import StreamsBuilder
from streamer.errors import DeserializationError, ProcessingError, SerializationError
from streamer.testing import TopologyTestDriver
from streamer.typed_serde import DataclassSerde, MsgspecSerde, PydanticSerde, typed
from tests.kafka_helpers import consume_all, produce
from tests.serde_helpers import while_worker_runs


class Status(enum.Enum):
    NEW = "new"
    PAID = "paid"


@dataclasses.dataclass
class LineDc:
    sku: str
    qty: int = 1


@dataclasses.dataclass
class OrderDc:
    id: str
    amount: int
    lines: list[LineDc] = dataclasses.field(default_factory=list)
    note: Optional[str] = None  # noqa: UP045 (typing.Union, as older code writes it)


class LineP(pydantic.BaseModel):
    sku: str
    qty: int = 1


class OrderP(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True)
    id: str
    amount: int
    lines: list[LineP] = []
    note: str | None = None


class LineM(msgspec.Struct):
    sku: str
    qty: int = 1


class OrderM(msgspec.Struct):
    id: str
    amount: int
    lines: list[LineM] = []
    note: str | None = None


KINDS = {
    "dataclass": (OrderDc, LineDc, DataclassSerde),
    "pydantic": (OrderP, LineP, PydanticSerde),
    "msgspec": (OrderM, LineM, MsgspecSerde),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> tuple[type, type, type]:
    return KINDS[request.param]


def test_typed_picks_the_serde_by_class(kind: tuple[type, type, type]) -> None:
    order, _, serde_class = kind
    assert type(typed(order)) is serde_class


def test_round_trip_keeps_the_value_and_writes_plain_json(kind: tuple[type, type, type]) -> None:
    order, line, _ = kind
    serde = typed(order)
    value = order(id="o-1", amount=3, lines=[line(sku="a"), line(sku="b", qty=2)], note="gift")
    data = serde.serialize(value)
    assert orjson.loads(data) == {"id": "o-1", "amount": 3, "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}],
                                  "note": "gift"}
    assert serde.deserialize(data) == value
    assert serde.deserialize_many([data, None]) == [value, None]
    assert serde.serialize(None) is None and serde.deserialize(None) is None


@pytest.mark.parametrize(("data", "field", "problem"), [
    (b'{"id": "o-1", "amount": "3"}', "amount", "int"),
    (b'{"id": "o-1"}', "amount", ""),
    (b'{"id": "o-1", "amount": 3, "lines": [{"sku": "a"}, {"sku": 7}]}', "lines[1].sku", "str"),
    (b'{"id": "o-1", "amount": 3, "lines": [{"qty": 1}]}', "lines[0].sku", ""),
    (b'{"id": "o-1", "amount": 3, "note": 5}', "note", "str"),
])
def test_a_value_that_does_not_fit_names_the_field(kind: tuple[type, type, type], data: bytes, field: str,
                                                    problem: str) -> None:
    serde = typed(kind[0])
    with pytest.raises(DeserializationError, match=re.escape(f"field '{field}'") + f".*{problem}") as raised:
        serde.deserialize(data)
    assert raised.value.args[0].startswith(kind[0].__name__)
    with pytest.raises(DeserializationError, match=re.escape(f"field '{field}'")):
        serde.deserialize_many([b'{"id": "ok", "amount": 1}', data])


def test_the_dataclass_and_msgspec_messages_read_alike() -> None:
    for cls in (OrderDc, OrderM):
        with pytest.raises(DeserializationError) as raised:
            typed(cls).deserialize(b'{"id": "o-1", "amount": "3"}')
        assert str(raised.value) == f"{cls.__name__}: field 'amount': expected int, got str"
        with pytest.raises(DeserializationError) as raised:
            typed(cls).deserialize(b'{"id": "o-1"}')
        assert str(raised.value) == f"{cls.__name__}: field 'amount': missing"


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b'"text"'])
def test_not_an_object_is_a_deserialization_error(kind: tuple[type, type, type], data: bytes) -> None:
    with pytest.raises(DeserializationError, match=kind[0].__name__):
        typed(kind[0]).deserialize(data)


def test_writing_another_type_is_a_topology_bug(kind: tuple[type, type, type]) -> None:
    order, _, _ = kind
    with pytest.raises(SerializationError, match=f"writes {order.__name__} values, not dict"):
        typed(order).serialize({"id": "o-1", "amount": 3})
    with pytest.raises(SerializationError, match="not dict"):
        typed(order).serialize_many([order(id="o", amount=1), {"id": "o-1"}])


def test_typed_refuses_classes_it_cannot_serve() -> None:
    with pytest.raises(SerializationError, match="dataclass, a pydantic BaseModel or a msgspec Struct"):
        typed(dict)


def test_the_typed_serdes_are_exported_from_the_package_without_importing_the_extras() -> None:
    import streamer
    import streamer.typed_serde as module

    for name in ("typed", "DataclassSerde", "PydanticSerde", "MsgspecSerde"):
        assert getattr(streamer, name) is getattr(module, name) and name in streamer.__all__
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, streamer; print(sorted({'pydantic', 'msgspec'} & set(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )
    assert loaded.stdout.strip() == "[]", "import streamer must not need the pydantic or msgspec extras"


@dataclasses.dataclass(frozen=True)
class Event:
    at: datetime.datetime
    day: datetime.date
    id: uuid.UUID
    status: Status
    kind: Literal["click", "view"]
    tags: set[str]
    scores: dict[str, float]
    pair: tuple[int, str]
    anything: Any
    either: int | str
    children: list[Event] = dataclasses.field(default_factory=list)


def test_dataclass_field_types_round_trip() -> None:
    serde = DataclassSerde(Event)
    leaf = Event(datetime.datetime(2026, 12, 2, 1, 30, tzinfo=datetime.UTC), datetime.date(2026, 12, 2),
                 uuid.UUID(int=7), Status.PAID, "view", {"a"}, {"x": 1.5, "y": 2.0}, (1, "one"), [1, {"k": None}], "s")
    tree = dataclasses.replace(leaf, kind="click", either=4, children=[leaf])
    assert serde.deserialize(serde.serialize(tree)) == tree
    scores_as_int = orjson.loads(serde.serialize(leaf))
    scores_as_int["scores"] = {"x": 1}  # JSON has one number type: an int is a fine float
    assert serde.deserialize(orjson.dumps(scores_as_int)).scores == {"x": 1.0}


@pytest.mark.parametrize(("change", "message"), [
    ({"status": "lost"}, "field 'status': expected a Status value"),
    ({"kind": "scroll"}, "field 'kind': expected one of"),
    ({"at": "yesterday"}, "field 'at': expected an ISO 8601 datetime"),
    ({"pair": [1]}, "field 'pair': expected an array of 2"),
    ({"either": 1.5}, "field 'either': expected int | str, got float"),
    ({"scores": {"x": "high"}}, r"field 'scores\['x'\]': expected float, got str"),
    ({"children": [{"at": 1}]}, r"field 'children\[0\].at': expected an ISO 8601 datetime, got int"),
])
def test_dataclass_errors_name_nested_fields(change: dict[str, Any], message: str) -> None:
    serde = DataclassSerde(Event)
    good = orjson.loads(serde.serialize(Event(datetime.datetime(2026, 1, 1), datetime.date(2026, 1, 1),
                                              uuid.UUID(int=1), Status.NEW, "click", set(), {}, (1, "a"), None, 1)))
    with pytest.raises(DeserializationError, match=f"^Event: {message}"):
        serde.deserialize(orjson.dumps({**good, **change}))


def test_dataclass_refuses_a_field_type_it_cannot_check() -> None:
    @dataclasses.dataclass
    class Odd:
        keys: dict[int, str]

    with pytest.raises(SerializationError, match=r"Odd.keys: JSON object keys are text"):
        DataclassSerde(Odd)


def test_pydantic_lax_models_keep_pydantic_rules() -> None:
    class Lax(pydantic.BaseModel):
        amount: int

    assert PydanticSerde(Lax).deserialize(b'{"amount": "3"}') == Lax(amount=3)
    with pytest.raises(DeserializationError, match="field 'amount'.*valid integer.*got str"):
        PydanticSerde(Lax).deserialize(b'{"amount": "three"}')


# --- the deserialization handler ---------------------------------------------------------------


def _paid_orders(source_serde: Any, sink_serde: Any) -> StreamsBuilder:
    builder = StreamsBuilder()
    (builder.stream("orders", key_serde="str", value_serde=source_serde)
        .map_values(lambda order: OrderM(id=order.id, amount=order.amount * 100))
        .to("cents", key_serde="str", value_serde=sink_serde))
    return builder


@pytest.mark.parametrize("order", [OrderDc, OrderP, OrderM])
def test_a_bad_record_is_dead_lettered_with_the_field_in_its_headers(order: type) -> None:
    settings = {"deserialization_error_handler": "dead_letter", "dead_letter_topic": "bad-orders"}
    with TopologyTestDriver(_paid_orders(typed(order), typed(OrderM)).build(), **settings) as driver:
        driver.pipe_raw("orders", b"a", b'{"id": "a", "amount": 2}')
        driver.pipe_raw("orders", b"b", b'{"id": "b", "amount": "two"}')
        driver.pipe_raw("orders", b"c", b'{"id": "c", "amount": 3}')
        assert driver.read_output("cents", value_serde=typed(OrderM)) == [("a", OrderM("a", 200)),
                                                                          ("c", OrderM("c", 300))]
        [dead] = driver.read_records("bad-orders")
    assert (dead.key, dead.value) == (b"b", b'{"id": "b", "amount": "two"}')
    headers = dict(dead.headers)
    assert headers["streamer.error.class"] == b"DeserializationError"
    assert f"{order.__name__}: field 'amount'".encode() in headers["streamer.error.message"]
    assert headers["streamer.error.offset"] == b"1"


def test_under_fail_a_bad_record_stops_with_the_field_named() -> None:
    with TopologyTestDriver(_paid_orders(typed(OrderDc), typed(OrderM)).build()) as driver:
        with pytest.raises(ProcessingError, match=r"OrderDc: field \\*'amount\\*': expected int, got str"):
            driver.pipe_raw("orders", b"b", b'{"id": "b", "amount": "two"}')


def test_a_sink_given_the_wrong_type_fails_under_every_policy() -> None:
    settings = {"deserialization_error_handler": "log_and_continue", "processing_error_handler": "log_and_continue"}
    with TopologyTestDriver(_paid_orders(typed(OrderDc), typed(OrderP)).build(), **settings) as driver:
        with pytest.raises(SerializationError, match="writes OrderP values, not OrderM"):
            driver.pipe_raw("orders", b"a", b'{"id": "a", "amount": 2}')


# --- the real broker ------------------------------------------------------------------------------


@pytest.mark.broker
async def test_typed_app_against_the_broker_dead_letters_the_bad_record(kafka_bootstrap, new_topic,
                                                                        tmp_path) -> None:
    source, output = await new_topic("typed-in", partitions=2), await new_topic("typed-out", partitions=2)
    dead = await new_topic("typed-dlq", partitions=1)
    rows = [(f"k{i}".encode(), orjson.dumps({"id": f"o{i}", "amount": i, "lines": [{"sku": "s"}]})) for i in range(40)]
    rows[17] = (b"k17", b'{"id": "o17", "amount": 17, "lines": [{"sku": 5}]}')
    await produce(kafka_bootstrap, source, rows)
    builder = StreamsBuilder()
    (builder.stream(source, key_serde="str", value_serde=typed(OrderDc))
        .map_values(lambda order: OrderP(id=order.id, amount=order.amount * 100, lines=[]))
        .to(output, key_serde="str", value_serde=typed(OrderP)))
    out, [bad] = await while_worker_runs(
        builder.build(), kafka_bootstrap, tmp_path,
        asyncio.gather(consume_all(kafka_bootstrap, output, 39, timeout=60), consume_all(kafka_bootstrap, dead, 1)),
        deserialization_error_handler="dead_letter", dead_letter_topic=dead)
    values = [typed(OrderP).deserialize(record.value) for record in out]
    assert sorted(v.amount for v in values) == [i * 100 for i in range(40) if i != 17]
    assert bad.value == rows[17][1]
    assert b"OrderDc: field 'lines[0].sku': expected str, got int" in dict(bad.headers)["streamer.error.message"]


def test_the_serde_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.serde_bench import main

    assert main(["--records", "40", "--batch", "16", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["json", "dataclass", "pydantic", "msgspec", "avro",
                                                       "json_schema"]
