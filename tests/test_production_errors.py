"""A record the broker refuses (over the output topic's max.message.bytes) stops the worker, saying what to fix."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.errors import ProduceError
from streamer.runtime.worker import Worker
from tests.kafka_helpers import produce

pytestmark = pytest.mark.broker

#: Sizes of the mapped values: two over the output topic's limit.
SIZES = {5: 2500, 12: 6000}
SMALL_TOPIC = {"max.message.bytes": "2000"}


def _topology(source: str, output: str) -> StreamsBuilder:
    builder = StreamsBuilder()
    (builder.stream(source, key_serde="str", value_serde="json")
        .map_values(lambda v: "x" * v["size"])
        .to(output, key_serde="str", value_serde="str"))
    return builder


async def _input(bootstrap: str, source: str) -> None:
    await produce(bootstrap, source, [(f"k{i}".encode(), orjson.dumps({"size": SIZES.get(i, 10)}))
                                      for i in range(20)])


def _worker(bootstrap: str, source: str, output: str, tmp_path: Path, **settings: object) -> Worker:
    config = StreamerConfig(application_id=f"refused-{uuid.uuid4().hex[:8]}", bootstrap_servers=bootstrap,
                            state_dir=str(tmp_path), commit_interval_ms=200, **settings)  # type: ignore[arg-type]
    return Worker(_topology(source, output).build(), config)


async def test_a_refused_record_stops_the_worker_saying_what_to_fix(kafka_bootstrap, new_topic, tmp_path) -> None:
    source, output = await new_topic("refused-in", partitions=1), await new_topic("refused-out", 1, SMALL_TOPIC)
    await _input(kafka_bootstrap, source)
    with pytest.raises(ProduceError, match=r"producing to .*MessageSizeTooLarge.*max.message.bytes"):
        await asyncio.wait_for(_worker(kafka_bootstrap, source, output, tmp_path).run(), 60)
