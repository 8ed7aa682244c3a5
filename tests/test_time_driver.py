"""The time model through the test driver: extractors, invalid times, per-record stream time, ordered
input across partitions, processor metadata, drops and punctuators owned by the node that schedules them."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from streamer import StreamsBuilder
from streamer.errors import ProcessingError
from streamer.processors.api import PunctuationType
from streamer.processors.user import RecordProcessor
from streamer.record import Record
from streamer.testing import TopologyTestDriver
from streamer.topology.topology import Topology


class StreamTimes(RecordProcessor):
    """Forwards each value with the stream time as of its record."""

    def process(self, record: Record) -> None:
        self.forward(record.with_value([record.value, self.stream_time]))


def _through(processor: Callable[[], RecordProcessor], topics: str | list[str] = "in",
             extractor: Callable[[Any, Any, int], Any] | None = None) -> Topology:
    builder = StreamsBuilder()
    (builder.stream(topics, key_serde="str", value_serde="json", timestamp_extractor=extractor)
        .process(processor).to("out", key_serde="str", value_serde="json"))
    return builder.build()


def test_a_timestamp_extractor_gives_records_their_event_time() -> None:
    topology = _through(StreamTimes, extractor=lambda key, value, ts: value["at"])
    with TopologyTestDriver(topology) as driver:
        driver.pipe_batch("in", [("a", {"at": 500}, 1), ("b", {"at": 200}, 2)])
        records = driver.read_records("out")
        assert [(r.timestamp, r.value[1]) for r in records] == [(500, 500), (200, 500)]
        assert driver.stream_time("in") == 500


@pytest.mark.parametrize("extracted", [None, -5, "12", 1.5])
def test_an_invalid_event_time_goes_to_the_deserialization_policy(extracted: Any) -> None:
    topology = _through(StreamTimes, extractor=lambda key, value, ts: value.get("at", extracted))
    with TopologyTestDriver(topology) as failing:
        with pytest.raises(ProcessingError, match="InvalidTimestampError"):
            failing.pipe("in", "a", {})
    with TopologyTestDriver(topology, deserialization_error_handler="dead_letter") as driver:
        driver.pipe_batch("in", [("a", {"at": 10}), ("b", {}), ("c", {"at": 5})])
        assert [v for _, v in driver.read_output("out")] == [[{"at": 10}, 10], [{"at": 5}, 10]]
        [dead] = driver.read_records("test-app-dlq", key_serde="str", value_serde="json")
        assert (dead.key, dead.value) == ("b", {})
        headers = dict(dead.headers)
        assert headers["streamer.error.class"] == b"InvalidTimestampError"
        assert b"timestamp extractor returned" in headers["streamer.error.message"]


def test_a_negative_kafka_timestamp_without_extractor_is_skipped_by_log_and_continue() -> None:
    with TopologyTestDriver(_through(StreamTimes), deserialization_error_handler="log_and_continue") as driver:
        driver.pipe_batch("in", [("a", 1, 100), ("b", 2, -1), ("c", 3, 50)])
        assert driver.read_output("out") == [("a", [1, 100]), ("c", [3, 100])]
    with TopologyTestDriver(_through(StreamTimes)) as failing:
        with pytest.raises(ProcessingError, match="negative time"):
            failing.pipe("in", "a", 1, timestamp=-1)


def test_an_extractor_that_raises_is_an_invalid_time() -> None:
    topology = _through(StreamTimes, extractor=lambda key, value, ts: value["missing"])
    with TopologyTestDriver(topology, deserialization_error_handler="log_and_continue") as driver:
        driver.pipe("in", "a", {})
        assert driver.read_output("out") == []


class SeenBatches(RecordProcessor):
    """Forwards, per record, the task's stream time (whole batch) and its own (as of the record)."""

    def process(self, record: Record) -> None:
        self.forward(record.with_value([self.context.stream_time, self.stream_time]))


def test_pipe_batch_is_one_batch_and_stream_time_advances_per_record_within_it() -> None:
    with TopologyTestDriver(_through(SeenBatches)) as driver:
        driver.pipe_batch("in", [("a", 0, 10), ("b", 0, 30), ("c", 0, 20), ("d", 0, 40)])
        assert [v for _, v in driver.read_output("out")] == [[40, 10], [40, 30], [40, 30], [40, 40]]
        driver.pipe("in", "e", 0, timestamp=5)  # late: stream time does not go back
        assert driver.read_output("out") == [("e", [40, 40])]


def test_several_input_topics_are_processed_in_timestamp_order() -> None:
    topology = _through(StreamTimes, topics=["left", "right"])
    with TopologyTestDriver(topology, max_task_idle_ms=1_000) as driver:
        driver.pipe_batch("left", [("l1", 1, 10), ("l2", 2, 30)])
        assert driver.read_output("out") == []  # waits for "right", which may still get earlier records
        driver.pipe_batch("right", [("r1", 3, 20), ("r2", 4, 40)])
        assert [k for k, _ in driver.read_output("out")] == ["l1", "r1", "l2"]
        driver.advance_wall_clock(999)
        assert driver.read_output("out") == []
        driver.advance_wall_clock(1)  # "left" stayed empty for max_task_idle_ms: go on without it
        assert driver.read_output("out") == [("r2", [4, 40])]
    with TopologyTestDriver(topology) as driver:  # default 0: an empty, caught-up partition holds nothing back
        driver.pipe("left", "l1", 1, timestamp=10)
        assert [k for k, _ in driver.read_output("out")] == ["l1"]


class Remembers(RecordProcessor):
    """Keeps the highest value in processor metadata; fails on a negative value."""

    def process(self, record: Record) -> None:
        best = self.context.processor_metadata("best")
        self.context.set_processor_metadata("best", max(record.value, best or 0))
        if record.value < 0:
            raise ValueError("negative")
        self.forward(record.with_value(best))


def test_processor_metadata_is_committed_and_dropped_with_a_failed_batch() -> None:
    with TopologyTestDriver(_through(Remembers)) as driver:
        driver.pipe_batch("in", [("a", 5), ("b", 3)])
        assert driver.read_output("out") == [("a", None), ("b", 5)]
        with pytest.raises(ProcessingError):
            driver.pipe_batch("in", [("c", 9), ("d", -1)])  # sets 9, then fails: the batch is undone
        driver.pipe("in", "e", 1)
        assert driver.read_output("out") == [("e", 5)]


class DropsNegatives(RecordProcessor):
    def process(self, record: Record) -> None:
        if record.value < 0:
            self.context.record_dropped("drops", record, "negative value")
        else:
            self.forward(record)


def test_dropped_records_are_counted_and_dead_lettered_with_the_reason() -> None:
    builder = StreamsBuilder()
    (builder.stream("in", key_serde="str", value_serde="json")
        .process(DropsNegatives, name="drops").to("out", key_serde="str", value_serde="json"))
    with TopologyTestDriver(builder.build(), processing_error_handler="dead_letter") as driver:
        driver.pipe_batch("in", [("a", 1), ("b", -1), ("c", -2)])
        assert driver.read_output("out") == [("a", 1)]
        assert driver.dropped == {"drops": 2}
        dead = driver.read_records("test-app-dlq", key_serde="str", value_serde="json")
    assert [(d.key, d.value) for d in dead] == [("b", -1), ("c", -2)]
    headers = dict(dead[0].headers)
    assert headers["streamer.dropped.reason"] == b"negative value"
    assert (headers["streamer.dropped.processor"], headers["streamer.dropped.offset"]) == (b"drops", b"1")
    with TopologyTestDriver(builder.build()) as quiet:
        quiet.pipe("in", "b", -1)
        assert quiet.dropped == {"drops": 1} and quiet.read_output("test-app-dlq") == []


class TicksOnce(RecordProcessor):
    """Schedules a punctuator from process() at its first record; cancels it on the value "stop"."""

    def init(self) -> None:
        self.handle: Any = None

    def process(self, record: Record) -> None:
        if self.handle is None:
            self.handle = self.schedule(100, PunctuationType.STREAM_TIME, self.tick)
        if record.value == "stop":
            self.handle.cancel()

    def tick(self, timestamp: int) -> None:
        self.forward(Record("tick", "tick", timestamp))


class Tags(RecordProcessor):
    def process(self, record: Record) -> None:
        self.forward(record.with_value(f"tagged {record.value}"))


def test_a_punctuator_scheduled_in_process_forwards_from_its_own_node_and_cancels() -> None:
    builder = StreamsBuilder()
    (builder.stream("in", key_serde="str", value_serde="str")
        .process(TicksOnce).process(Tags).to("out", key_serde="str", value_serde="str"))
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("in", "a", "x", timestamp=0)
        driver.pipe("in", "a", "x", timestamp=100)
        assert driver.read_output("out") == [("tick", "tagged tick")]
        driver.pipe("in", "a", "stop", timestamp=150)
        driver.pipe("in", "a", "x", timestamp=500)
        assert driver.read_output("out") == []
