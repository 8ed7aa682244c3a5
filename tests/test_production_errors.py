"""Records the broker would refuse (over the output topic's max.message.bytes), under each production policy."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAuthorizationFailedError
from aiokafka.producer.message_accumulator import BatchBuilder

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.errors import ProduceError
from streamer.runtime.collector import RecordCollector, _records_of
from streamer.runtime.metrics import WorkerMetrics
from streamer.runtime.production import OutputTopics, Produced, ProductionErrorHandler
from streamer.runtime.worker import Worker
from tests.conftest import _wait_for_leaders
from tests.kafka_helpers import consume_all, produce, wait_for

pytestmark = pytest.mark.broker

#: Sizes of the mapped values: two over the output topic's limit, one of them over the dead-letter topic's too.
SIZES = {5: 2500, 12: 6000}
SMALL_TOPIC = {"max.message.bytes": "2000"}
DEAD_LETTER_TOPIC = {"max.message.bytes": "4000"}
KEPT = {f"k{i}" for i in range(20)} - {"k5", "k12"}


def _topology(source: str, output: str, table: bool = False) -> StreamsBuilder:
    builder = StreamsBuilder()
    sized = (builder.stream(source, key_serde="str", value_serde="json").map_values(lambda v: "x" * v["size"]))
    if table:  # the values go through a store, whose changelog takes them
        sized = sized.to_table("sizes", value_serde="str").to_stream()
    sized.to(output, key_serde="str", value_serde="str")
    return builder


async def _input(bootstrap: str, source: str) -> None:
    await produce(bootstrap, source, [(f"k{i}".encode(), orjson.dumps({"size": SIZES.get(i, 10)}))
                                      for i in range(20)])


def _worker(bootstrap: str, source: str, output: str, tmp_path: Path, table: bool = False,
            **settings: object) -> Worker:
    config = StreamerConfig(application_id=settings.pop("application_id", f"refused-{uuid.uuid4().hex[:8]}"),
                            bootstrap_servers=bootstrap, state_dir=str(tmp_path), commit_interval_ms=200,
                            **settings)  # type: ignore[arg-type]
    return Worker(_topology(source, output, table).build(), config)


def _count(worker: Worker, name: str, **labels: str) -> float:
    value = worker.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_under_fail_the_worker_stops_naming_the_topic_and_the_size(kafka_bootstrap, new_topic,
                                                                         tmp_path) -> None:
    source, output = await new_topic("refused-in", partitions=1), await new_topic("refused-out", 1, SMALL_TOPIC)
    await _input(kafka_bootstrap, source)
    worker = _worker(kafka_bootstrap, source, output, tmp_path)
    with pytest.raises(ProduceError, match=rf"a record of 25\d\d bytes for {output}\[0\] is larger than the "
                                           r"topic's max.message.bytes \(2000; raise it .*production_error_handler"):
        await asyncio.wait_for(worker.run(), 60)
    assert _count(worker, "streamer_records_failed_total", reason="production_error",
                  error="RecordTooLargeError") == 1


async def test_under_log_and_continue_every_other_record_arrives(kafka_bootstrap, new_topic, tmp_path) -> None:
    source, output = await new_topic("refused-in", partitions=1), await new_topic("refused-out", 1, SMALL_TOPIC)
    await _input(kafka_bootstrap, source)
    worker = _worker(kafka_bootstrap, source, output, tmp_path, production_error_handler="log_and_continue")
    running = asyncio.create_task(worker.run())
    try:
        arrived = await consume_all(kafka_bootstrap, output, len(KEPT), timeout=60)
        assert sorted(r.key.decode() for r in arrived) == sorted(KEPT)
        await wait_for(lambda: _count(worker, "streamer_records_skipped_total", reason="production_error",
                                      error="RecordTooLargeError") == 2, message="two records skipped")
        # the partition goes on taking batches after the skipped records: they never reached the producer
        await produce(kafka_bootstrap, source, [(b"late", orjson.dumps({"size": 10}))])
        assert [r.key for r in await consume_all(kafka_bootstrap, output, len(KEPT) + 1, timeout=60)][-1] == b"late"
    finally:
        worker.stop()
        await running


async def test_under_dead_letter_the_record_lands_with_the_error(kafka_bootstrap, new_topic, tmp_path) -> None:
    source, output = await new_topic("refused-in", partitions=1), await new_topic("refused-out", 1, SMALL_TOPIC)
    dead_letters = await new_topic("refused-dlq", 1, DEAD_LETTER_TOPIC)
    await _input(kafka_bootstrap, source)
    worker = _worker(kafka_bootstrap, source, output, tmp_path, production_error_handler="dead_letter",
                     dead_letter_topic=dead_letters)
    running = asyncio.create_task(worker.run())
    try:
        letters = {r.key: r for r in await consume_all(kafka_bootstrap, dead_letters, 2, timeout=60)}
        assert sorted(r.key.decode() for r in await consume_all(kafka_bootstrap, output, len(KEPT))) == sorted(KEPT)
        assert _count(worker, "streamer_records_dead_lettered_total", reason="production_error") == 2
    finally:
        worker.stop()
        await running
    assert set(letters) == {b"k5", b"k12"}
    fits, too_large = dict(letters[b"k5"].headers), dict(letters[b"k12"].headers)
    assert letters[b"k5"].value == b"x" * 2500  # the record as the sink produced it
    assert fits["streamer.error.class"] == b"RecordTooLargeError"
    assert b"max.message.bytes (2000" in fits["streamer.error.message"]
    assert (fits["streamer.production.topic"], fits["streamer.production.partition"]) == (output.encode(), b"0")
    # too large for the dead-letter topic as well: it lands without its value, which says how large it was
    assert letters[b"k12"].value is None
    assert too_large["streamer.error.value_dropped"] == b"6000"
    assert too_large["streamer.production.topic"] == output.encode()


async def test_a_changelog_record_is_never_skipped(kafka_bootstrap, new_topic, admin: AIOKafkaAdminClient,
                                                   tmp_path) -> None:
    source, output = await new_topic("refused-in", partitions=1), await new_topic("refused-out", partitions=1)
    await _input(kafka_bootstrap, source)
    app = f"refused-{uuid.uuid4().hex[:8]}"
    changelog = f"{app}-sizes-changelog"
    await admin.create_topics([NewTopic(changelog, 1, 1, topic_configs={"cleanup.policy": "compact", **SMALL_TOPIC})])
    try:
        await _wait_for_leaders(admin, changelog, 1)  # the worker reads its limit at start-up
        worker = _worker(kafka_bootstrap, source, output, tmp_path, table=True, application_id=app,
                         production_error_handler="log_and_continue")
        with pytest.raises(ProduceError, match=rf"{changelog}\[0\].*internal topic, whose records are never skipped"):
            await asyncio.wait_for(worker.run(), 60)
    finally:
        await admin.delete_topics([changelog])


async def test_a_topic_that_takes_less_than_a_batch_gets_batches_it_takes(kafka_bootstrap, new_topic,
                                                                           tmp_path) -> None:
    """100 records of 500 bytes, each fine for a 2000-byte topic, but a default batch would hold them all."""
    source, output = await new_topic("refused-in", partitions=1), await new_topic("refused-out", 1, SMALL_TOPIC)
    await produce(kafka_bootstrap, source, [(f"k{i}".encode(), orjson.dumps({"size": 500})) for i in range(100)])
    worker = _worker(kafka_bootstrap, source, output, tmp_path)
    running = asyncio.create_task(worker.run())
    try:
        assert len(await consume_all(kafka_bootstrap, output, 100, timeout=60)) == 100
    finally:
        worker.stop()
        await running


class _RefusingProducer:
    """A producer whose metadata wait refuses one topic, as aiokafka's send_batch does for an unauthorized one."""

    def __init__(self) -> None:
        self._max_request_size = 1_048_576
        self.sent: list[tuple[str, int, list[Produced]]] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(16_384, 0)  # no compression

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[None]:
        if topic == "secret":
            raise TopicAuthorizationFailedError(topic)
        self.sent.append((topic, partition, _records_of(batch)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.mark.parametrize("policy", ["fail", "log_and_continue", "dead_letter"])
async def test_a_batch_refused_before_it_was_queued_goes_to_the_policy(policy: str) -> None:
    """No broker: which records a refused send_batch hands to the policy, and where their dead letters go."""
    config = StreamerConfig(application_id="app", production_error_handler=policy)  # type: ignore[arg-type]
    producer = _RefusingProducer()
    metrics = WorkerMetrics()
    handler = ProductionErrorHandler("0_0", config, OutputTopics({}, frozenset({"app-counts-changelog"})),
                                     producer._max_request_size, metrics)
    collector = RecordCollector(producer, {"secret": 1, "open": 1, "app-dlq": 1}, metrics, handler)  # type: ignore[arg-type]
    collector.send("secret", [b"a", b"b"], [b"1", b"2"], [1, 2], [[], []], [0, 0])
    collector.send("open", [b"c"], [b"3"], [3], [[]], [0])
    if policy == "fail":
        with pytest.raises(ProduceError, match=r"output secret\[0\].*TopicAuthorizationFailed.*is fail"):
            await collector.flush()
        return
    await collector.flush()
    topics = [(topic, [r[0] for r in records]) for topic, _, records in producer.sent]
    assert ("open", [b"c"]) in topics
    assert (("app-dlq", [b"a", b"b"]) in topics) == (policy == "dead_letter")
    assert len(topics) == (2 if policy == "dead_letter" else 1)  # the dead letters go in one batch
    assert metrics.registry.get_sample_value("streamer_records_skipped_total", {
        "reason": "production_error", "error": "TopicAuthorizationFailedError"}) == 2


async def test_a_batch_the_broker_refuses_after_it_was_sent_stops_the_task(kafka_bootstrap, new_topic,
                                                                           tmp_path) -> None:
    """A topic named per record has no limit read at start-up: its refused batch cannot be skipped."""
    source, output = await new_topic("refused-in", partitions=1), await new_topic("refused-out", 1, SMALL_TOPIC)
    await _input(kafka_bootstrap, source)
    builder = StreamsBuilder()
    (builder.stream(source, key_serde="str", value_serde="json").map_values(lambda v: "x" * v["size"])
        .to(lambda key, value: output, key_serde="str", value_serde="str"))
    config = StreamerConfig(application_id=f"refused-{uuid.uuid4().hex[:8]}", bootstrap_servers=kafka_bootstrap,
                            state_dir=str(tmp_path), commit_interval_ms=200,
                            production_error_handler="log_and_continue")
    with pytest.raises(ProduceError, match=r"MessageSizeTooLarge.*raise it on the topic.*stops the task under every"):
        await asyncio.wait_for(Worker(builder.build(), config).run(), 60)
