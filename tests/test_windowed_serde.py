"""Windowed-key serdes: exact Kafka Streams byte layouts, round trips and clear errors."""

from __future__ import annotations

import struct

import pytest

from streamer.errors import SerializationError
from streamer.serde import FunctionSerde
from streamer.windows.serde import SessionWindowedSerde, TimeWindowedSerde, WindowedJsonSerde
from streamer.windows.windowed import Windowed


def test_time_windowed_layout_is_key_then_start() -> None:
    serde = TimeWindowedSerde("str", 60_000)
    data = serde.serialize(Windowed("user-1", 120_000, 180_000))
    assert data == b"user-1" + struct.pack(">q", 120_000)  # what Java's TimeWindowedSerializer writes
    assert serde.deserialize(data) == Windowed("user-1", 120_000, 180_000)
    assert serde.serialize(None) is None and serde.deserialize(None) is None


def test_time_windowed_end_is_capped_like_kafka_streams() -> None:
    serde = TimeWindowedSerde("bytes", 10)
    window = serde.deserialize(b"k" + struct.pack(">q", 2**63 - 5))
    assert window == Windowed(b"k", 2**63 - 5, 2**63 - 1)


def test_session_windowed_layout_is_key_end_start() -> None:
    serde = SessionWindowedSerde("str")
    data = serde.serialize(Windowed("u", 1_000, 5_000))
    assert data == b"u" + struct.pack(">qq", 5_000, 1_000)  # Kafka Streams' session key schema
    assert serde.deserialize(data) == Windowed("u", 1_000, 5_000)


def test_json_layout_and_an_inner_json_serde() -> None:
    plain = WindowedJsonSerde()
    data = plain.serialize(Windowed({"user": 1}, 0, 10))
    assert data == b'{"key":{"user":1},"start":0,"end":10}'
    window = plain.deserialize(data)
    assert window is not None and (window.key, window.start, window.end) == ({"user": 1}, 0, 10)
    upper = FunctionSerde(lambda key: b'"' + key.upper().encode() + b'"', lambda data: data[1:-1].decode().lower())
    custom = WindowedJsonSerde(upper)
    data = custom.serialize(Windowed("abc", 5, 6))
    assert data == b'{"key":"ABC","start":5,"end":6}'
    assert custom.deserialize(data) == Windowed("abc", 5, 6)


@pytest.mark.parametrize("serde", [TimeWindowedSerde("str", 5), SessionWindowedSerde("str"), WindowedJsonSerde()])
def test_errors_say_what_is_wrong(serde: TimeWindowedSerde | SessionWindowedSerde | WindowedJsonSerde) -> None:
    with pytest.raises(SerializationError, match="Windowed keys"):
        serde.serialize("not windowed")  # type: ignore[arg-type]
    with pytest.raises(SerializationError):
        serde.deserialize(b"\x01")


def test_inner_serde_must_make_bytes() -> None:
    with pytest.raises(SerializationError, match="not bytes"):
        TimeWindowedSerde(FunctionSerde(lambda key: key, lambda data: data), 5).serialize(Windowed("a str", 0, 5))
    with pytest.raises(ValueError, match="window_size_ms"):
        TimeWindowedSerde("str", 0)
