"""Bad input against the real broker: handlers skip or dead-letter exactly the bad records."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.errors import ProcessingError
from streamer.runtime.worker import Worker
from tests.kafka_helpers import consume_all, produce

pytestmark = pytest.mark.broker


def _topology(source: str, output: str) -> StreamsBuilder:
    builder = StreamsBuilder()
    (builder.stream(source, key_serde="str", value_serde="json")
        .map_values(lambda v: {"n": v["n"], "inverse": 1 / v["n"]})  # n == 0 raises
        .to(output, key_serde="str", value_serde="json"))
    return builder


def _rows() -> list[tuple[bytes, bytes]]:
    rows = []
    for i in range(300):
        if i % 50 == 7:
            rows.append((f"k{i}".encode(), b"{not json"))  # cannot be deserialized
        elif i % 50 == 9:
            rows.append((f"k{i}".encode(), orjson.dumps({"n": 0})))  # user code raises
        else:
            rows.append((f"k{i}".encode(), orjson.dumps({"n": i + 1})))
    return rows


async def _run(bootstrap: str, source: str, output: str, expected: int, tmp_path, **settings) -> None:
    config = StreamerConfig(application_id=f"errors-{uuid.uuid4().hex[:8]}", bootstrap_servers=bootstrap,
                            state_dir=str(tmp_path), commit_interval_ms=200, **settings)
    worker = Worker(_topology(source, output).build(), config)
    running = asyncio.create_task(worker.run())
    try:
        await consume_all(bootstrap, output, expected, timeout=60)
    finally:
        worker.stop()
        await running


async def test_dead_letter_keeps_the_bad_records_with_the_error(kafka_bootstrap, new_topic, tmp_path) -> None:
    source, output = await new_topic("errors-in", partitions=2), await new_topic("errors-out", partitions=2)
    dead = await new_topic("errors-dlq", partitions=1)
    rows = _rows()
    await produce(kafka_bootstrap, source, rows)
    await _run(kafka_bootstrap, source, output, 288, tmp_path, deserialization_error_handler="dead_letter",
               processing_error_handler="dead_letter", dead_letter_topic=dead)
    good = await consume_all(kafka_bootstrap, output, 288, timeout=30)
    assert sorted(orjson.loads(r.value)["n"] for r in good) == sorted(
        orjson.loads(v)["n"] for _, v in rows if v != b"{not json" and orjson.loads(v)["n"] != 0)
    letters = await consume_all(kafka_bootstrap, dead, 12, timeout=30)
    assert sorted((r.key, r.value) for r in letters) == sorted(
        (k, v) for k, v in rows if v == b"{not json" or v == orjson.dumps({"n": 0}))
    for letter in letters:
        headers = dict(letter.headers)
        assert headers["streamer.error.topic"] == source.encode()
        expected = b"DeserializationError" if letter.value == b"{not json" else b"ZeroDivisionError"
        assert headers["streamer.error.class"] == expected
        assert int(headers["streamer.error.offset"]) >= 0 and headers["streamer.error.stacktrace"]


async def test_log_and_continue_skips_only_the_bad_records(kafka_bootstrap, new_topic, tmp_path) -> None:
    source, output = await new_topic("errors-in", partitions=2), await new_topic("errors-out", partitions=2)
    await produce(kafka_bootstrap, source, _rows())
    await _run(kafka_bootstrap, source, output, 288, tmp_path, deserialization_error_handler="log_and_continue",
               processing_error_handler="log_and_continue")
    assert len(await consume_all(kafka_bootstrap, output, 288, timeout=30)) == 288


async def test_fail_stops_the_worker_with_the_record_named(kafka_bootstrap, new_topic, tmp_path) -> None:
    source, output = await new_topic("errors-in", partitions=1), await new_topic("errors-out", partitions=1)
    await produce(kafka_bootstrap, source, [(b"a", orjson.dumps({"n": 1})), (b"b", orjson.dumps({"n": 0}))])
    config = StreamerConfig(application_id=f"errors-{uuid.uuid4().hex[:8]}", bootstrap_servers=kafka_bootstrap,
                            state_dir=str(tmp_path))
    with pytest.raises(ProcessingError, match=r"processor map_values-1, input .*\[0\]@1: ZeroDivisionError"):
        await asyncio.wait_for(Worker(_topology(source, output).build(), config).run(), 60)
