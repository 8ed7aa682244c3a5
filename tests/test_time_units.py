"""The time model's parts on their own: per-record stream time, commit metadata, timestamp-ordered input."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from streamer.errors import OffsetMetadataError
from streamer.record import Record
from streamer.time import metadata
from streamer.time.extractors import all_valid, invalid_reason
from streamer.time.partition_group import IDLE_DISABLED, PartitionGroup
from streamer.time.task_time import TaskTime


class Msg(NamedTuple):
    offset: int
    timestamp: int


def _records(stamps: list[int], first_offset: int = 0) -> list[Record]:
    return [Record(None, i, t, None, first_offset + i) for i, t in enumerate(stamps)]


def test_stream_time_as_of_each_record_of_a_batch() -> None:
    time = TaskTime()
    records = _records([10, 30, 20, 40])
    assert time.begin_batch(records, [r.timestamp for r in records])
    assert [time.of(r) for r in records] == [10, 30, 30, 40]
    assert time.stream_time == 40
    time.end_batch()
    later = _records([35, 50], first_offset=4)
    time.begin_batch(later, [35, 50])
    assert [time.of(r) for r in later] == [40, 50]
    assert time.of(Record(None, None, 0)) == 40  # a record from no input offset of this batch (a punctuator's)
    time.end_batch()
    assert time.of(later[0]) == 50


def test_stream_time_never_goes_back_and_uncommitted_changes_are_discarded() -> None:
    time = TaskTime()
    time.begin_batch(_records([100]), [100])
    time.end_batch()
    time.set("closed", 7)
    time.commit()
    assert not time.begin_batch(_records([50], 1), [50])
    time.end_batch()
    time.begin_batch(_records([300], 2), [300])
    time.end_batch()
    time.set("closed", 9)
    assert time.dirty and time.get("closed") == 9
    time.discard()
    assert (time.stream_time, time.get("closed"), time.dirty) == (100, 7, False)


def test_commit_metadata_round_trip_and_the_newest_copy_wins() -> None:
    time = TaskTime()
    time.begin_batch(_records([1234]), [1234])
    time.end_batch()
    time.set("emitted", 1000)
    text = time.encode()
    assert metadata.decode(text) == (1234, {"emitted": 1000})
    assert metadata.newest([metadata.encode(5, {"k": 1}), None, "", text]) == (1234, {"emitted": 1000})
    assert metadata.decode("written by someone else") is None
    restored = TaskTime()
    restored.restore([None, text])
    assert (restored.stream_time, restored.get("emitted"), restored.dirty) == (1234, 1000, False)


def test_processor_metadata_must_fit_kafkas_offset_metadata_limit() -> None:
    time = TaskTime()
    for i in range(40):
        time.set(f"window-aggregate-{i:03}", 2**62)
    assert len(time.encode()) < metadata.MAX_METADATA_BYTES
    with pytest.raises(OffsetMetadataError, match="offset.metadata.max.bytes"):
        for i in range(40, 400):
            time.set(f"window-aggregate-{i:03}", 1)
    with pytest.raises(TypeError):
        time.set("x", "1")  # type: ignore[arg-type]


def test_timestamp_validity() -> None:
    assert all_valid([0, 5, 2**40]) and all_valid([])
    assert not all_valid([1, -1]) and not all_valid([1, None]) and not all_valid([True]) and not all_valid([1.5])
    assert invalid_reason(-3, extracted=False) is not None and "timestamp_extractor" in invalid_reason(-3, False)
    assert "None" in invalid_reason(None, extracted=True)
    assert invalid_reason(7, extracted=True) is None


def _intake(partition: Any, messages: list[Msg]) -> tuple[list[Record], list[int]]:
    valid = [m for m in messages if m.timestamp >= 0]
    return [Record(partition, m.offset, m.timestamp, None, m.offset) for m in valid], [m.timestamp for m in valid]


def _chunk(stamps: list[int], first: int = 0) -> list[Msg]:
    return [Msg(first + i, t) for i, t in enumerate(stamps)]


def _drain(group: PartitionGroup, lag: Any = lambda p: 0, now: int = 0) -> list[tuple[str, list[int]]]:
    out = []
    while (piece := group.next_slice(now, lag)) is not None:
        out.append((piece.partition, piece.timestamps))
    return out


def test_lowest_head_first_in_slices_ties_to_the_first_partition() -> None:
    group = PartitionGroup(["a", "b"], 0, _intake)
    group.add("a", _chunk([1, 2, 5, 5, 9]))
    group.add("b", _chunk([3, 5, 6]))
    assert _drain(group) == [("a", [1, 2]), ("b", [3]), ("a", [5, 5]), ("b", [5, 6]), ("a", [9])]
    assert group.next_offsets == {"a": 5, "b": 3}


def test_an_empty_partition_holds_the_others_back_until_its_lag_is_zero() -> None:
    group = PartitionGroup(["a", "b"], 0, _intake)
    group.add("a", _chunk([1, 2]))
    assert group.next_slice(0, lambda p: None) is None  # b's lag unknown: its records may be on the broker
    assert group.next_slice(0, lambda p: 3) is None  # b has records on their way
    assert _drain(group, lambda p: 0) == [("a", [1, 2])]


def test_max_task_idle_ms_waits_for_a_caught_up_partition_then_enforces_processing() -> None:
    group = PartitionGroup(["a", "b"], 100, _intake)
    group.add("a", _chunk([1]))
    assert group.next_slice(1_000, lambda p: 0) is None
    assert group.next_deadline() == 1_100
    assert group.next_slice(1_099, lambda p: 0) is None
    assert _drain(group, now=1_100) == [("a", [1])]
    group.add("a", _chunk([2], 1))
    group.add("b", _chunk([0]))  # b has data again: no waiting; once empty, its timer starts over
    assert _drain(group, now=1_100) == [("b", [0])]
    assert _drain(group, now=1_199) == []
    assert _drain(group, now=1_200) == [("a", [2])]
    never_waits = PartitionGroup(["a", "b"], IDLE_DISABLED, _intake)
    never_waits.add("a", _chunk([1]))
    assert _drain(never_waits, lambda p: None) == [("a", [1])]


def test_a_chunk_with_nothing_valid_still_moves_the_offset_on() -> None:
    group = PartitionGroup(["a", "b"], 0, _intake)
    group.add("a", _chunk([-1, -1], first=10))
    assert group.next_slice(0, lambda p: 0) is None
    assert group.next_offsets == {"a": 12}
    assert group.is_empty("a") and group.buffered("a") == 0


def test_no_idle_timer_runs_once_every_partition_is_empty() -> None:
    """A task with nothing buffered sleeps until input arrives; a stale deadline would wake it at once forever."""
    group = PartitionGroup(["a", "b"], 0, _intake)
    group.add("a", _chunk([1]))
    assert _drain(group, now=1_000) == [("a", [1])]
    assert group.next_slice(1_000, lambda p: 0) is None
    assert group.next_deadline() is None
