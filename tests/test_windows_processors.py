"""Window processors with a fake context: stream time survives a restart through processor metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamer.processors.change import Change
from streamer.processors.window_aggregate import WindowAggregate
from streamer.record import Record
from streamer.serde import JSON, STRING
from streamer.state import WriteCache, open_layout
from streamer.windows import TimeWindows, Windowed

WINDOWS = TimeWindows.of_size_and_grace(10, 0)


class FakeContext:
    """The parts of a task's context window processors use; metadata and stores outlive processors."""

    def __init__(self, tmp: Path) -> None:
        self.metadata: dict[str, int] = {}
        self.dropped: list[tuple[str, int, str]] = []
        self.stores = {"w": WriteCache(open_layout("memory", tmp, "w", "window", WINDOWS.default_retention_ms))}
        self.wall_clock_ms = 0

    def processor_metadata(self, key: str) -> int | None:
        return self.metadata.get(key)

    def set_processor_metadata(self, key: str, value: int) -> None:
        self.metadata[key] = value

    def get_store(self, name: str) -> Any:
        return self.stores[name]

    def record_dropped(self, processor: str, record: Record, reason: str) -> None:
        self.dropped.append((processor, record.timestamp, reason))

    def record_error(self, processor: str, record: Record, error: BaseException) -> None:
        raise error


def _processor(context: FakeContext) -> WindowAggregate:
    processor = WindowAggregate("agg", "w", STRING, JSON, WINDOWS, WINDOWS.default_retention_ms,
                                lambda: 0, lambda _k, _v, n: n + 1)
    processor.init(context)  # type: ignore[arg-type]
    return processor


def test_stream_time_is_saved_per_batch_and_restored_by_a_new_processor(tmp_path: Path) -> None:
    context = FakeContext(tmp_path)
    first = _processor(context)
    out = first.process([Record("a", 1, 5, offset=0), Record("a", 1, 12, offset=1)])
    assert [(r.key, r.value, r.timestamp) for r in out] == [
        (Windowed("a", 0, 10), Change(1, 0), 5), (Windowed("a", 10, 20), Change(1, 0), 12)]
    assert context.metadata == {"w": 12}
    restarted = _processor(context)  # a new task instance after a restart: no record seen yet
    assert restarted.process([Record("a", 1, 7, offset=2)]) == []
    assert [(processor, ts) for processor, ts, _ in context.dropped] == [("agg", 7)]
