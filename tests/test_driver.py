"""The test driver itself: input, output, stores, time, error policies and lifecycle."""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from typing import Any, Callable

import pytest

from streamer import (
    JSON,
    STRING,
    Processor,
    ProcessorContext,
    PunctuationType,
    Record,
    RecordProcessor,
    StreamsBuilder,
)
from streamer.errors import ConfigError, ProcessingError, SerializationError, StreamerError
from streamer.processors.sink import Sink
from streamer.processors.source import Source
from streamer.testing import OutputRecord, TopologyTestDriver
from streamer.topology.topology import NodeSpec, SinkSpec, SourceSpec, SubTopology, Topology


def wordcount() -> Topology:
    """Two sub-topologies: split lines and repartition by word, then count."""
    builder = StreamsBuilder()
    (
        builder.stream("lines", value_serde="str")
        .flat_map_values(str.split)
        .group_by(lambda _k, word: word, key_serde="str", name="by-word")
        .count("counts")
        .to_stream()
        .to("word-counts", value_serde="json")
    )
    return builder.build()


def doubler(error_after: Callable[[Any], Any] = lambda v: v) -> Topology:
    """``in`` (str keys, JSON values) -> value * 2 -> ``out``; ``error_after`` may raise."""
    builder = StreamsBuilder()
    builder.stream("in", key_serde="str", value_serde="json").map_values(lambda v: error_after(v) * 2).to("out")
    return builder.build()


def fails_on_zero(value: Any) -> Any:
    if 1 / value:  # raises ZeroDivisionError for 0
        return value


# -- describe --------------------------------------------------------------------------------


def test_describe_names_the_repartition_and_changelog_topics() -> None:
    topology = wordcount()
    text = topology.describe()
    assert "Sub-topology 0" in text and "Sub-topology 1" in text
    assert "<application.id>-by-word-repartition (repartition, sub-topology 0 -> 1)" in text
    assert "<application.id>-counts-changelog (changelog of store counts, sub-topology 1)" in text
    with TopologyTestDriver(topology, application_id="wc") as driver:
        described = driver.describe()
    assert "wc-by-word-repartition (repartition, sub-topology 0 -> 1)" in described
    assert "wc-counts-changelog" in described


# -- input and output ------------------------------------------------------------------------


def test_word_count_through_a_repartition_topic() -> None:
    with TopologyTestDriver(wordcount()) as driver:
        driver.pipe("lines", None, "to be or not to be")
        assert driver.read_latest("word-counts") == {"to": 2, "be": 2, "or": 1, "not": 1}
        assert driver.store("counts").get("be") == 2


def test_timestamps_default_to_the_wall_clock_and_headers_pass_through() -> None:
    with TopologyTestDriver(doubler(), initial_wall_clock_ms=1_000) as driver:
        driver.pipe("in", "a", 1, headers=[("trace", b"t1")])
        driver.advance_wall_clock(500)
        driver.pipe("in", "b", 2)
        driver.pipe("in", "c", 3, timestamp=42)
        assert driver.read_records("out") == [
            OutputRecord("out", "a", 2, 1_000, [("trace", b"t1")], 0, 0),
            OutputRecord("out", "b", 4, 1_500, None, 0, 1),
            OutputRecord("out", "c", 6, 42, None, 0, 2),
        ]


def test_pipe_many_takes_optional_timestamps() -> None:
    with TopologyTestDriver(doubler()) as driver:
        driver.pipe_many("in", [("a", 1, 10), ("b", 2)])
        assert [(r.key, r.timestamp) for r in driver.read_records("out")] == [("a", 10), ("b", 0)]


def test_reading_consumes_what_was_read() -> None:
    with TopologyTestDriver(doubler()) as driver:
        driver.pipe("in", "a", 1)
        assert driver.read_output("out") == [("a", 2)]
        assert driver.read_output("out") == []
        driver.pipe("in", "b", 2)
        assert driver.read_output("out") == [("b", 4)]


def test_read_latest_keeps_the_last_value_per_key_and_drops_tombstones() -> None:
    builder = StreamsBuilder()
    builder.stream("in", key_serde="str", value_serde="json").to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("in", [("a", 1), ("b", 1), ("a", 2), ("b", None)])
        assert driver.read_latest("out") == {"a": 2}


def test_pattern_sources_take_any_matching_topic() -> None:
    builder = StreamsBuilder()
    builder.stream(pattern=r"logs-.*", value_serde="str").map_values(str.upper).to("all-logs")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("logs-web", None, "get /")
        driver.pipe("logs-db", None, "select")
        assert driver.read_output("all-logs") == [(None, "GET /"), (None, "SELECT")]
        with pytest.raises(StreamerError, match=r"logs-\.\*"):
            driver.pipe("metrics", None, "x")


def test_unknown_topics_are_errors_that_list_the_known_ones() -> None:
    with TopologyTestDriver(wordcount()) as driver:
        with pytest.raises(StreamerError, match=r"does not read topic 'line'.*\['lines'\]"):
            driver.pipe("line", None, "x")
        with pytest.raises(StreamerError, match="does not read topic"):
            driver.pipe("test-app-by-word-repartition", "k", "v")
        with pytest.raises(StreamerError, match="never writes topic 'word-count'"):
            driver.read_output("word-count")


def test_internal_topics_can_be_read_with_the_application_id_prefix() -> None:
    with TopologyTestDriver(wordcount(), application_id="wc") as driver:
        driver.pipe("lines", None, "b a b")
        assert driver.read_output("wc-by-word-repartition") == [("b", "b"), ("a", "a"), ("b", "b")]
        # the driver commits after every record, so the changelog has one entry per update
        assert driver.read_output("wc-counts-changelog") == [("b", 2), ("a", 1)]
        driver.pipe("lines", None, "a")
        assert driver.read_output("wc-counts-changelog") == [("a", 2)]


def test_keys_are_serialized_on_the_way_through_a_repartition_topic() -> None:
    with TopologyTestDriver(wordcount()) as driver:
        driver.pipe("lines", b"line-1", "hi")
        raw = driver.read_records("test-app-by-word-repartition", key_serde="bytes", value_serde="bytes")
        assert [(r.key, r.value) for r in raw] == [(b"hi", b"hi")]


def test_pipe_serializes_with_the_source_serdes() -> None:
    with TopologyTestDriver(doubler()) as driver:
        with pytest.raises(SerializationError, match="cannot serialize key 5 for topic 'in'"):
            driver.pipe("in", 5, 1)
        driver.pipe_raw("in", b"a", b"21")
        assert driver.read_output("out") == [("a", 42)]
    with TopologyTestDriver(wordcount()) as driver:
        with pytest.raises(SerializationError, match="str value 'k' given to the bytes serde"):
            driver.pipe("lines", "k", "words")


def test_a_value_no_serde_serialized_is_reported_with_the_fix() -> None:
    builder = StreamsBuilder()
    builder.stream("in").group_by(lambda _k, v: v.decode()).count("c")
    with TopologyTestDriver(builder.build()) as driver:
        with pytest.raises(SerializationError, match="str value 'v' given to the bytes serde.*pass key_serde="):
            driver.pipe("in", b"k", b"v")


def test_topics_without_a_single_writer_need_serdes_to_read() -> None:
    builder = StreamsBuilder()
    stream = builder.stream("in", key_serde="str", value_serde="json")
    stream.to(lambda _k, _v: "mixed")
    stream.to(lambda _k, _v: "mixed", value_serde="str", name="as-text")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("in", "k", "v")
        with pytest.raises(StreamerError, match="pass key_serde= and value_serde="):
            driver.read_output("mixed")
        assert driver.read_output("mixed", key_serde="str", value_serde="bytes") == [("k", b'"v"'), ("k", b"v")]


def test_custom_partitioner_out_of_range_is_an_error() -> None:
    builder = StreamsBuilder()
    builder.stream("in", key_serde="str").to("out", partitioner=lambda _k, _v, n: n)
    with TopologyTestDriver(builder.build(), partitions={"out": 2}) as driver:
        with pytest.raises(ProcessingError, match="partitioner chose partition 2 of out, which has 2"):
            driver.pipe("in", "k", b"v")


# -- stores ----------------------------------------------------------------------------------


def test_store_view_reads_deserialized_entries() -> None:
    with TopologyTestDriver(wordcount()) as driver:
        driver.pipe("lines", None, "b a b")
        counts = driver.store("counts")
        assert counts.all() == {"a": 1, "b": 2}
        assert counts.get("b") == 2
        assert counts.get("zzz") is None and counts.get("zzz", 0) == 0
        assert "a" in counts and "zzz" not in counts
        assert len(counts) == 2
        with pytest.raises(StreamerError, match=r"no store 'count'.*\['counts'\]"):
            driver.store("count")


# -- error handling --------------------------------------------------------------------------


def test_fail_policy_raises_and_discards_the_records_effects() -> None:
    with TopologyTestDriver(doubler(fails_on_zero)) as driver:
        driver.pipe("in", "a", 1)
        with pytest.raises(ProcessingError, match=r"input in\[0\]@1: ZeroDivisionError") as raised:
            driver.pipe("in", "b", 0)
        assert isinstance(raised.value.__cause__, ZeroDivisionError)
        driver.pipe("in", "c", 3)
        assert driver.read_output("out") == [("a", 2), ("c", 6)]


def test_fail_in_a_later_sub_topology_rolls_back_the_whole_record() -> None:
    builder = StreamsBuilder()
    (
        builder.stream("in", key_serde="str", value_serde="json")
        .group_by(lambda _k, v: v["group"], key_serde="str", name="g")
        .aggregate(lambda: 0, lambda _k, v, total: total + 10 // v["n"], "totals")
        .to_stream()
        .to("out")
    )
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe("in", "a", {"group": "x", "n": 1})
        with pytest.raises(ProcessingError, match="totals-aggregate"):
            driver.pipe("in", "b", {"group": "x", "n": 0})
        assert driver.read_output("test-app-g-repartition") == [("x", {"group": "x", "n": 1})]
        driver.pipe("in", "c", {"group": "x", "n": 2})
        assert driver.read_output("out") == [("x", 10), ("x", 15)]
        assert driver.store("totals").all() == {"x": 15}


def test_log_and_continue_skips_the_record() -> None:
    topology = doubler(fails_on_zero)
    with TopologyTestDriver(topology, processing_error_handler="log_and_continue") as driver:
        driver.pipe_many("in", [("a", 1), ("b", 0), ("c", 3)])
        assert driver.read_output("out") == [("a", 2), ("c", 6)]
        assert driver.read_output("test-app-dlq") == []


def test_dead_letter_keeps_the_original_message_and_the_error() -> None:
    with TopologyTestDriver(doubler(fails_on_zero), processing_error_handler="dead_letter") as driver:
        driver.pipe("in", "a", 0, timestamp=7, headers=[("h", b"1")])
        driver.pipe("in", "b", 1)
        assert driver.read_output("out") == [("b", 2)]
        [dead] = driver.read_records("test-app-dlq")
    assert (dead.key, dead.value, dead.timestamp) == (b"a", b"0", 7)
    headers = dict(dead.headers)
    assert headers["h"] == b"1"
    assert headers["streamer.error.class"] == b"ZeroDivisionError"
    assert headers["streamer.error.processor"].startswith(b"map_values")
    assert (headers["streamer.error.topic"], headers["streamer.error.offset"]) == (b"in", b"0")


@pytest.mark.parametrize("policy", ["fail", "log_and_continue", "dead_letter"])
def test_deserialization_errors_follow_their_own_policy(policy: str) -> None:
    settings = {"deserialization_error_handler": policy, "dead_letter_topic": "bad-input"}
    with TopologyTestDriver(doubler(), **settings) as driver:
        if policy == "fail":
            with pytest.raises(ProcessingError, match="DeserializationError.*deserialization_error_handler"):
                driver.pipe_raw("in", b"a", b"{not json")
        else:
            driver.pipe_raw("in", b"a", b"{not json")
        driver.pipe("in", "b", 1)
        assert driver.read_output("out") == [("b", 2)]
        dead = driver.read_output("bad-input")
    assert dead == ([(b"a", b"{not json")] if policy == "dead_letter" else [])


def test_unknown_settings_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'processing_handler'"):
        TopologyTestDriver(doubler(), processing_handler="fail")


# -- punctuation -----------------------------------------------------------------------------


class Ticker(RecordProcessor):
    """Counts records; each punctuation forwards the count so far, stamped with the punctuation time."""

    def __init__(self, plan: Callable[[Ticker], None]) -> None:
        self.plan = plan
        self.count = 0
        self.closed = False

    def init(self) -> None:
        self.plan(self)

    def process(self, record: Record) -> None:
        self.count += 1

    def tick(self, timestamp: int) -> None:
        self.forward(Record("count", self.count, timestamp))

    def close(self) -> None:
        self.closed = True


def ticker_topology(plan: Callable[[Ticker], None], made: list[Ticker] | None = None) -> Topology:
    """``in`` -> Ticker (through ``Stream.process``) -> ``ticks``; ``plan`` schedules its punctuation."""

    def make_ticker() -> Ticker:
        ticker = Ticker(plan)
        if made is not None:
            made.append(ticker)
        return ticker

    builder = StreamsBuilder()
    builder.stream("in", key_serde="str", value_serde="json").process(make_ticker).to("ticks")
    return builder.build()


def ticks(driver: TopologyTestDriver) -> list[tuple[int, int]]:
    return [(r.value, r.timestamp) for r in driver.read_records("ticks")]


def test_stream_time_punctuation_follows_record_timestamps() -> None:
    topology = ticker_topology(lambda t: t.schedule(1_000, PunctuationType.STREAM_TIME, t.tick))
    with TopologyTestDriver(topology) as driver:
        driver.pipe_many("in", [("a", 1, 0), ("b", 1, 999)])
        driver.advance_wall_clock(10_000)
        assert ticks(driver) == []
        driver.pipe("in", "c", 1, timestamp=1_000)
        assert ticks(driver) == [(3, 1_000)]
        driver.pipe("in", "d", 1, timestamp=5_500)  # several intervals passed: one punctuation, no burst
        driver.pipe("in", "late", 1, timestamp=100)  # stream time does not go back
        driver.pipe("in", "e", 1, timestamp=6_400)
        assert ticks(driver) == [(4, 5_500)]
        driver.pipe("in", "f", 1, timestamp=6_500)
        assert ticks(driver) == [(7, 6_500)]


def test_wall_clock_punctuation_runs_when_the_clock_advances() -> None:
    topology = ticker_topology(lambda t: t.schedule(1_000, PunctuationType.WALL_CLOCK_TIME, t.tick))
    with TopologyTestDriver(topology, initial_wall_clock_ms=10_000) as driver:
        driver.pipe("in", "a", 1, timestamp=99_999)
        driver.advance_wall_clock(999)
        assert ticks(driver) == []
        driver.advance_wall_clock(1)
        assert ticks(driver) == [(1, 11_000)]
        driver.advance_wall_clock(5_000)
        assert ticks(driver) == [(1, 16_000)]
        with pytest.raises(ValueError, match="only moves forward"):
            driver.advance_wall_clock(-1)


def test_cron_punctuation_uses_the_driver_clock() -> None:
    topology = ticker_topology(lambda t: t.schedule_cron("* * * * *", t.tick))
    with TopologyTestDriver(topology) as driver:
        driver.advance_wall_clock(59_999)
        assert ticks(driver) == []
        driver.advance_wall_clock(1)
        assert ticks(driver) == [(0, 60_000)]


class Emitter(Processor):
    """A raw batch processor that forwards its input and, on each wall-clock tick, a marker record."""

    def init(self, context: ProcessorContext) -> None:
        super().init(context)
        context.schedule(100, PunctuationType.WALL_CLOCK_TIME, lambda ts: [Record("tick", ts, ts)])

    def process(self, records: list[Record]) -> list[Record]:
        return records


def test_a_hand_built_topology_with_a_raw_processor() -> None:
    nodes = [
        NodeSpec("source", "source", partial(Source, "source", STRING, JSON), ["emitter"]),
        NodeSpec("emitter", "process", partial(Emitter, "emitter"), ["sink"]),
        NodeSpec("sink", "sink", partial(Sink, "sink", "out", STRING, JSON), []),
    ]
    sub = SubTopology(0, nodes, [SourceSpec("source", ("in",), None, False)], [SinkSpec("sink", "out", False)], [])
    with TopologyTestDriver(Topology([sub], [])) as driver:
        driver.pipe("in", "k", {"v": 1})
        driver.advance_wall_clock(100)
        assert driver.read_output("out") == [("k", {"v": 1}), ("tick", 100)]


class Deduplicate(RecordProcessor):
    """Forwards the first record per key; remembers keys in a store and forgets them every minute."""

    def init(self) -> None:
        self.seen = self.get_store("seen")
        self.schedule(60_000, PunctuationType.STREAM_TIME, self.forget)

    def process(self, record: Record) -> None:
        if record.key not in self.seen:
            self.seen.put(record.key, record.timestamp)
            self.forward(record)

    def forget(self, now: int) -> None:
        for key, _ in list(self.seen.range()):
            self.seen.delete(key)


def test_a_user_processor_with_a_store_and_a_punctuator() -> None:
    builder = StreamsBuilder()
    builder.add_state_store("seen", key_serde="str", value_serde="json")
    builder.stream("in", key_serde="str", value_serde="json").process(Deduplicate, stores=["seen"]).to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("in", [("a", 1, 10), ("b", 2, 20), ("a", 3, 30)])
        assert driver.store("seen").all() == {"a": 10, "b": 20}
        driver.pipe("in", "a", 4, timestamp=60_000)  # processed first, then the punctuator empties the store
        assert driver.store("seen").all() == {}
        driver.pipe("in", "a", 5, timestamp=60_001)
        assert driver.read_output("out") == [("a", 1), ("b", 2), ("a", 5)]
        assert driver.read_latest("test-app-seen-changelog") == {"a": 60_001}


# -- running from async code, and lifecycle --------------------------------------------------


async def test_the_driver_works_inside_an_async_test() -> None:
    callers: list[str] = []

    async def slow_double(value: int) -> int:
        callers.append(threading.current_thread().name)
        await asyncio.sleep(0.001)
        return value * 2

    builder = StreamsBuilder()
    builder.stream("in", key_serde="str", value_serde="json").map_values(slow_double).to("out")
    with TopologyTestDriver(builder.build()) as driver:
        driver.pipe_many("in", [("a", 1), ("b", 2)])
        assert driver.read_output("out") == [("a", 2), ("b", 4)]
    assert callers and all(name.startswith("streamer-test-driver") for name in callers)
    await asyncio.sleep(0)  # the test's own loop is still fine


def test_sync_tests_run_user_code_in_the_test_thread() -> None:
    seen: list[threading.Thread] = []
    with TopologyTestDriver(doubler(lambda v: seen.append(threading.current_thread()) or v)) as driver:
        driver.pipe("in", "a", 1)
    assert seen == [threading.current_thread()]


def test_close_closes_processors_and_refuses_further_use() -> None:
    made: list[Ticker] = []
    topology = ticker_topology(lambda _t: None, made)
    driver = TopologyTestDriver(topology)
    driver.close()
    driver.close()
    assert [t.closed for t in made] == [True]
    with pytest.raises(StreamerError, match="closed"):
        driver.pipe("in", "a", 1)
    with pytest.raises(StreamerError, match="closed"):
        driver.read_output("ticks")
