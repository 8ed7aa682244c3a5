"""Error paths that must never skip records silently: streamer's own failures fail the task."""

from __future__ import annotations


import pytest

from streamer import StreamsBuilder
from streamer.errors import DeserializationError, ProcessingError, SerializationError, StateStoreError
from streamer.runtime.error_handler import is_machinery_failure
from streamer.state.write_cache import WriteCache
from streamer.testing import TopologyTestDriver
from streamer.topology.topology import Topology


def counting() -> Topology:
    builder = StreamsBuilder()
    (builder.stream("in", key_serde="str", value_serde="str")
     .group_by_key().count("counts").to_stream().to("out", key_serde="str", value_serde="json"))
    return builder.build()


def broken_read(self: WriteCache, key: bytes) -> bytes | None:
    raise StateStoreError(f"cannot read RocksDB store {self.name}: Corruption: block checksum mismatch")


@pytest.mark.parametrize("policy", ["log_and_continue", "dead_letter"])
def test_a_store_failure_fails_the_task_under_every_policy(policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store read sits in the same try block as the user's aggregator; it must not be skipped."""
    with TopologyTestDriver(counting(), processing_error_handler=policy,
                            deserialization_error_handler=policy) as driver:
        driver.pipe("in", "a", "x")
        monkeypatch.setattr(WriteCache, "get", broken_read)
        with pytest.raises(StateStoreError, match="block checksum mismatch"):
            driver.pipe("in", "b", "y")
        assert driver.read_records(f"{driver.config.effective_dead_letter_topic}") == []


def test_a_user_error_is_still_skipped_under_log_and_continue() -> None:
    builder = StreamsBuilder()
    builder.stream("in", key_serde="str", value_serde="json").map_values(lambda v: 10 // v).to("out")
    with TopologyTestDriver(builder.build(), processing_error_handler="log_and_continue") as driver:
        driver.pipe_many("in", [("a", 0), ("b", 5)])
        assert [(r.key, r.value) for r in driver.read_records("out", key_serde="str", value_serde="json")] == [("b", 2)]


def test_which_errors_are_machinery_failures() -> None:
    assert is_machinery_failure(StateStoreError("x"))
    assert is_machinery_failure(SerializationError("x"))
    assert is_machinery_failure(ProcessingError("x"))
    assert not is_machinery_failure(DeserializationError("x"))
    assert not is_machinery_failure(ValueError("x"))
    assert not is_machinery_failure(KeyError("x"))


def test_a_sink_serde_failure_fails_the_task_under_log_and_continue() -> None:
    builder = StreamsBuilder()
    builder.stream("in", key_serde="str", value_serde="str").to("out", value_serde="bytes")
    with TopologyTestDriver(builder.build(), processing_error_handler="log_and_continue") as driver:
        with pytest.raises(SerializationError, match="bytes serde"):
            driver.pipe("in", "a", "x")


