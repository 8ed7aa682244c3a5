"""Metrics and the health endpoint without a broker: paths, status codes, labels, separate registries."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamer import StreamsBuilder
from streamer.cli import _parser
from streamer.config import load_config
from streamer.errors import DeserializationError, ProcessingError
from streamer.processors.api import PunctuationType
from streamer.processors.user import RecordProcessor
from streamer.record import Record
from streamer.runtime.health import HealthServer, Heartbeat
from streamer.runtime.metrics import STORE_SIZES_EVERY_S, WorkerMetrics, _StoreSizes
from streamer.state.memory_store import MemoryStore
from streamer.state.rocksdb_store import RocksDBStore
from streamer.state.write_cache import WriteCache
from streamer.testing import TopologyTestDriver


async def _request(port: int, line: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"{line}\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _value(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


async def test_health_follows_the_heartbeat_and_ready_the_worker() -> None:
    ready = False
    heartbeat = Heartbeat()
    server = HealthServer(WorkerMetrics(), heartbeat, lambda: ready, host="127.0.0.1")
    await server.start()
    try:
        assert await _request(server.port, "GET /health HTTP/1.1") == (503, b"poll loop not running\n")
        heartbeat.beat()
        assert await _request(server.port, "GET /health HTTP/1.1") == (200, b"alive\n")
        assert not heartbeat.alive(stale_s=0.0)
        assert (await _request(server.port, "GET /ready HTTP/1.1"))[0] == 503
        ready = True
        assert await _request(server.port, "GET /ready?probe=1 HTTP/1.1") == (200, b"ready\n")
        assert await _request(server.port, "HEAD /ready HTTP/1.1") == (200, b"")
        assert (await _request(server.port, "POST /ready HTTP/1.1"))[0] == 405
        assert (await _request(server.port, "GET /other HTTP/1.1"))[0] == 404
        assert (await _request(server.port, "nonsense"))[0] == 400
        status, body = await _request(server.port, "GET /metrics HTTP/1.1")
        assert status == 200 and b"# TYPE streamer_records_consumed_total counter" in body
    finally:
        await server.close()


def test_counters_are_labelled_and_each_worker_has_its_own_registry() -> None:
    first, second = WorkerMetrics(), WorkerMetrics()
    first.consumed("lines", 3, 500)
    first.consumed("lines", 3, 20)
    first.skipped(DeserializationError("bad"), dead_lettered=True)
    first.skipped(ValueError("user"), dead_lettered=False)
    first.dropped("windowed-count", "late: every window of timestamp 5 closed (stream time 900)", dead_lettered=True)
    first.dropped("windowed-count", "late: every window of timestamp 6 closed (stream time 901)", dead_lettered=False)
    first.set_lag("lines", 3, 7)
    first.forget_partition("lines", 3)
    first.forget_partition("lines", 4)  # never reported: nothing to remove
    assert _value(first, "streamer_records_consumed_total", topic="lines", partition="3") == 520
    assert _value(second, "streamer_records_consumed_total", topic="lines", partition="3") is None
    assert _value(first, "streamer_records_skipped_total", reason="deserialization_error",
                  error="DeserializationError") == 1
    assert _value(first, "streamer_records_skipped_total", reason="processing_error", error="ValueError") == 1
    assert _value(first, "streamer_records_dead_lettered_total", reason="deserialization_error") == 1
    assert _value(first, "streamer_records_dead_lettered_total", reason="dropped") == 1
    # one series per kind of reason, not per record's details
    assert _value(first, "streamer_records_dropped_total", processor="windowed-count", reason="late") == 2
    assert _value(first, "streamer_consumer_lag_records", topic="lines", partition="3") is None


def test_metrics_port_is_a_run_flag() -> None:
    args = _parser().parse_args(["run", "apps.wordcount:topology", "--metrics-port", "9400"])
    assert load_config(None, {"metrics_port": args.metrics_port}, environ={}).metrics_port == 9400
    assert load_config(None, {}, environ={}).metrics_port is None


class _Ticks(RecordProcessor):
    """Forwards a tick every 100 ms of stream time."""

    def init(self) -> None:
        self.schedule(100, PunctuationType.STREAM_TIME, lambda at: [Record("tick", "tick", at)])

    def process(self, record: Record) -> None:
        self.forward(record)


def _samples(metrics: WorkerMetrics, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {frozenset(s.labels.items()): s.value for family in text_string_to_metric_families(
        metrics.exposition().decode()) for s in family.samples if s.name == name}


def test_punctuations_are_counted_and_timed_by_task_and_processor() -> None:
    builder = StreamsBuilder()
    builder.stream("in", key_serde="str", value_serde="str").process(_Ticks, name="ticks").to("out")
    metrics = WorkerMetrics()
    with TopologyTestDriver(builder.build()) as driver:
        for task in driver._tasks:  # the driver runs without metrics; a worker's tasks have them
            task.metrics = metrics
        for at in (0, 100, 250):
            driver.pipe("in", "a", "x", timestamp=at)
    labels = frozenset({"task": "0_0", "processor": "ticks", "type": "stream_time"}.items())
    assert _samples(metrics, "streamer_punctuations_total") == {labels: 2}
    timed = _samples(metrics, "streamer_punctuation_seconds_count")
    assert timed == {frozenset({"task": "0_0", "processor": "ticks"}.items()): 2}


def test_a_record_that_fails_its_task_is_counted() -> None:
    builder = StreamsBuilder()
    builder.stream("in", key_serde="str", value_serde="json").map_values(lambda v: 10 // v).to("out")
    metrics = WorkerMetrics()
    with TopologyTestDriver(builder.build()) as driver:
        for task in driver._tasks:
            task.metrics = metrics
        with pytest.raises(ProcessingError):
            driver.pipe("in", "a", 0)
    assert _value(metrics, "streamer_records_failed_total", reason="processing_error",
                  error="ZeroDivisionError") == 1


def test_store_sizes_are_read_at_a_scrape_and_cached(tmp_path: Path) -> None:
    rocks, memory = RocksDBStore(tmp_path, "counts"), MemoryStore("words")
    tasks = [SimpleNamespace(task_id="1_0", stores=SimpleNamespace(caches={"counts": WriteCache(rocks)})),
             SimpleNamespace(task_id="1_1", stores=SimpleNamespace(caches={"words": WriteCache(memory)}))]
    metrics = WorkerMetrics()
    now = [0.0]
    metrics.registry.register(_StoreSizes(lambda: tasks, clock=lambda: now[0]))  # what watch_stores does
    try:
        rocks.write_batch([(b"k%d" % i, b"v" * 100) for i in range(500)], 500)
        memory.write_batch([(b"a", b"1"), (b"b", b"2")], 2)
        assert _value(metrics, "streamer_store_keys", task="1_0", store="counts") == 500
        assert _value(metrics, "streamer_store_keys", task="1_1", store="words") == 2
        assert (_value(metrics, "streamer_store_bytes", task="1_0", store="counts") or 0) > 500 * 100 / 10
        assert _value(metrics, "streamer_store_bytes", task="1_1", store="words") is None  # not cheap to count
        memory.write_batch([(b"c", b"3")], 3)
        assert _value(metrics, "streamer_store_keys", task="1_1", store="words") == 2  # cached
        now[0] += STORE_SIZES_EVERY_S
        assert _value(metrics, "streamer_store_keys", task="1_1", store="words") == 3
        rocks.close()  # a task closing between scrapes
        now[0] += STORE_SIZES_EVERY_S
        assert _value(metrics, "streamer_store_keys", task="1_0", store="counts") is None
    finally:
        rocks.close()


def test_the_operations_table_lists_every_metric() -> None:
    """docs/operations.md names each metric family a worker has, and no other."""
    metrics = WorkerMetrics()
    metrics.watch_stores(lambda: [])
    # prometheus-client names a counter's family without its _total
    exposed = {f.name + "_total" if f.type == "counter" else f.name for f in metrics.registry.collect()}
    table = Path(__file__).parent.parent / "docs" / "operations.md"
    documented = set(re.findall(r"^\| `(streamer_[a-z_]+)` \|", table.read_text(), re.MULTILINE))
    assert documented == exposed

