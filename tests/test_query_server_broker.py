"""Interactive queries against the real broker: a running word count answers over HTTP and `streamer query`."""

from __future__ import annotations

import socket
import uuid
from collections import Counter
from typing import Any

import aiohttp
import orjson
import pytest

from tests.kafka_helpers import produce, wait_for
from tests.workers import WorkerProcess, run_cli, while_running

pytestmark = pytest.mark.broker

STORE = "word-counts"


def free_port() -> int:
    """A loopback port nothing listens on now (the worker binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def answers(session: aiohttp.ClientSession, endpoint: str, path: str, **params: str) -> tuple[int, Any]:
    async with session.get(f"http://{endpoint}{path}", params=params) as response:
        return response.status, await response.json()


async def test_a_worker_answers_over_http_and_streamer_query(kafka_bootstrap, new_topic) -> None:
    source = await new_topic("iq-lines", partitions=3)
    output = await new_topic("iq-counts", partitions=3)
    lines = [(None, f"apple banana apple {i % 5} zebra/{i % 2}".encode()) for i in range(300)]
    expected = Counter(word for _, line in lines for word in line.decode().replace("/", " ").split())
    endpoint = f"127.0.0.1:{free_port()}"
    worker = WorkerProcess("apps.wordcount:topology", kafka_bootstrap, f"iq-{uuid.uuid4().hex[:8]}",
                           app_settings={"input": source, "output": output},
                           extra_args=["--application-server", endpoint], name="iq-worker").start()
    try:
        await produce(kafka_bootstrap, source, lines)
        async with aiohttp.ClientSession() as session:
            async def all_counted() -> bool:
                try:
                    status, body = await answers(session, endpoint, f"/stores/{STORE}/all")
                except aiohttp.ClientConnectionError:
                    return False  # not listening yet
                return status == 200 and {e["key"]: e["value"] for e in body["entries"]} == dict(expected)

            await while_running([worker], wait_for(all_counted, timeout=60, message="every count over HTTP"))
            for word, count in expected.items():
                status, body = await answers(session, endpoint, f"/stores/{STORE}/keys/{word}")
                assert status == 200 and body["value"] == count, body
            status, body = await answers(session, endpoint, f"/stores/{STORE}/keys/cherry")
            assert (status, body["error"]) == (404, "not_found")
            status, body = await answers(session, endpoint, "/metadata")
            assert status == 200 and body["stores"] == {STORE: "key_value"}
            assert [(h["endpoint"], h["active"]) for h in body["hosts"]] == [(endpoint, {STORE: [0, 1, 2]})]

        result = run_cli("query", STORE, "apple", "--server", endpoint)
        assert result.returncode == 0, result.stderr
        assert orjson.loads(result.stdout)["value"] == expected["apple"]
        result = run_cli("query", STORE, "--from", "a", "--to", "c", "--server", endpoint)
        assert sorted(e["key"] for e in orjson.loads(result.stdout)["entries"]) == ["apple", "banana"]
        result = run_cli("query", STORE, "--prefix", "ze", "--server", endpoint)
        assert {e["key"] for e in orjson.loads(result.stdout)["entries"]} == {"zebra"}
        result = run_cli("query", STORE, "cherry", "--server", endpoint)
        assert result.returncode == 1 and orjson.loads(result.stdout)["error"] == "not_found"
        result = run_cli("query", STORE, "apple", "--metadata", "--server", endpoint)
        assert orjson.loads(result.stdout)["active"] == endpoint
        result = run_cli("query", "nope", "apple", "--server", endpoint)
        assert result.returncode == 2 and "no store 'nope'" in result.stderr
    finally:
        assert await worker.stop() == 0
    result = run_cli("query", STORE, "apple", "--server", endpoint, "--wait", "0")
    assert result.returncode == 2 and "no query server answered" in result.stderr
