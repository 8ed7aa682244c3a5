"""Metrics and health of a running worker, scraped over HTTP as Prometheus and a probe would."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.wordcount import build
from streamer.config import ProcessingGuarantee, StreamerConfig
from streamer.runtime.worker import Worker
from tests.kafka_helpers import consume_all, produce, wait_for

pytestmark = pytest.mark.broker

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _get(port: int, path: str) -> tuple[int, str]:
    """One HTTP/1.1 GET on loopback: (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


async def _scrape(port: int) -> Samples:
    status, body = await _get(port, "/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def _total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (sample, found), value in samples.items() if sample == name and wanted <= found)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_a_scraped_worker_counts_its_input_and_catches_up(
        kafka_bootstrap, new_topic, tmp_path, monkeypatch, guarantee: ProcessingGuarantee) -> None:
    source = await new_topic("metrics-lines", partitions=2)
    output = await new_topic("metrics-counts", partitions=2)
    monkeypatch.setenv("STREAMER_APP_INPUT", source)
    monkeypatch.setenv("STREAMER_APP_OUTPUT", output)
    lines = [(None, f"apple banana {i % 5}".encode()) for i in range(300)]
    await produce(kafka_bootstrap, source, lines)
    config = StreamerConfig(application_id=f"metrics-{uuid.uuid4().hex[:8]}", bootstrap_servers=kafka_bootstrap,
                            state_dir=str(tmp_path), state_store="memory", commit_interval_ms=200,
                            processing_guarantee=guarantee, metrics_port=0)
    worker = Worker(build().build(), config)
    running = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: worker.health is not None and worker.health.port, message="metrics endpoint bound")
        assert worker.health is not None
        port = worker.health.port
        assert (await _get(port, "/nope"))[0] == 404
        await wait_for(lambda: _status_is(port, "/ready", 200), timeout=60, message="/ready answers 200")
        assert await _get(port, "/health") == (200, "alive\n")

        words = Counter(word for _, line in lines for word in line.decode().split())
        await consume_all(kafka_bootstrap, output, 3 * len(lines), timeout=60,
                          isolation_level="read_committed" if guarantee == "exactly_once" else "read_uncommitted")

        async def caught_up(expected_lines: int) -> Samples | None:
            samples = await _scrape(port)
            lags = [v for (name, labels), v in samples.items() if name == "streamer_consumer_lag_records"]
            consumed = _total(samples, "streamer_records_consumed_total", topic=source)
            return samples if consumed == expected_lines and len(lags) == 4 and not any(lags) else None

        samples = await wait_for(lambda: caught_up(len(lines)), timeout=60, message="input consumed, lag 0")
        assert _total(samples, "streamer_records_consumed_total") == len(lines) + sum(words.values())
        assert _total(samples, "streamer_records_produced_total", topic=output) > 0
        assert _total(samples, "streamer_tasks_running") == 4  # two sub-topologies, two partitions each
        assert _total(samples, "streamer_rebalances_total") >= 1
        assert _total(samples, "streamer_commits_total") >= 1
        assert _total(samples, "streamer_commit_latency_seconds_count") >= 1
        assert _total(samples, "streamer_end_to_end_latency_seconds_count", topic=output) >= 1
        assert _total(samples, "streamer_transaction_aborts_total") == 0

        more = [(None, b"cherry") for _ in range(100)]
        await produce(kafka_bootstrap, source, more)
        await wait_for(lambda: caught_up(len(lines) + len(more)), timeout=60, message="numbers move with the input")

        async def store_keys() -> bool:  # one per word once committed; read at most every 5 s
            samples = await _scrape(port)
            return _total(samples, "streamer_store_keys", store="word-counts") == len(words) + 1  # and cherry
        await wait_for(store_keys, timeout=30, message="the store's keys")
    finally:
        worker.stop()
        await running

    # A second worker with in-memory stores restores the counts from the changelog, and says so.
    again = Worker(build().build(), config)
    running = asyncio.create_task(again.run())
    try:
        await wait_for(again.ready, timeout=60, message="second worker ready")
        assert again.health is not None
        samples = await _scrape(again.health.port)
        restored = _total(samples, "streamer_restore_records_total", store="word-counts")
        assert restored > 0
        assert _total(samples, "streamer_restore_records_to_restore_total", store="word-counts") >= restored
        assert _total(samples, "streamer_restore_remaining_records", store="word-counts") == 0
    finally:
        again.stop()
        await running


async def _status_is(port: int, path: str, status: int) -> bool:
    return (await _get(port, path))[0] == status
