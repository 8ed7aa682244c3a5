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


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports nothing listens on now (the workers bind them a moment later)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:  # all bound at once, so no port comes twice
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


async def answers(session: aiohttp.ClientSession, endpoint: str, path: str, **params: str) -> tuple[int, Any]:
    async with session.get(f"http://{endpoint}{path}", params=params) as response:
        return response.status, await response.json()


async def test_a_worker_answers_over_http_and_streamer_query(kafka_bootstrap, new_topic) -> None:
    source = await new_topic("iq-lines", partitions=3)
    output = await new_topic("iq-counts", partitions=3)
    lines = [(None, f"apple banana apple {i % 5} zebra/{i % 2}".encode()) for i in range(300)]
    expected = Counter(word for _, line in lines for word in line.decode().replace("/", " ").split())
    (port,) = free_ports(1)
    endpoint = f"127.0.0.1:{port}"
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


async def _every_key_right(session: aiohttp.ClientSession, endpoints: list[str], expected: dict[str, int],
                           settled: bool) -> bool:
    """True once every worker answers every key with its count.

    ``settled``: the counts are final, so any value answered must be the final one and no key
    may be missing; only the retryable 503 (tasks moving) may stand in for an answer.
    """
    done = True
    for endpoint in endpoints:
        for word, count in expected.items():
            try:
                status, body = await answers(session, endpoint, f"/stores/{STORE}/keys/{word}")
            except aiohttp.ClientConnectionError:
                return False  # not listening yet
            if status == 503:
                assert body["retryable"] is True, body
                done = False
            elif settled:
                assert (status, body.get("value")) == (200, count), (endpoint, word, status, body)
            elif status != 200 or body["value"] != count:
                done = False
    return done


async def _members(session: aiohttp.ClientSession, endpoint: str) -> set[str] | None:
    """The endpoints the worker at ``endpoint`` knows from its last assignment; None while it has none."""
    try:
        status, body = await answers(session, endpoint, "/metadata")
    except aiohttp.ClientConnectionError:
        return None
    if status != 200 or body["rebalancing"] or not body["assignment_known"]:
        return None
    return {host["endpoint"] for host in body["hosts"]}


async def test_every_key_from_either_worker_also_after_a_rebalance(kafka_bootstrap, new_topic) -> None:
    source = await new_topic("iq2-lines", partitions=4)
    output = await new_topic("iq2-counts", partitions=4)
    words = [f"w{i:02d}" for i in range(24)]
    lines = [(None, " ".join(words[: i % 24 + 1]).encode()) for i in range(96)]
    expected = dict(Counter(word for _, line in lines for word in line.decode().split()))
    app_id = f"iq2-{uuid.uuid4().hex[:8]}"
    endpoints = [f"127.0.0.1:{port}" for port in free_ports(3)]
    workers = [WorkerProcess("apps.wordcount:topology", kafka_bootstrap, app_id,
                             app_settings={"input": source, "output": output},
                             extra_args=["--application-server", endpoint], name=f"iq2-{n}")
               for n, endpoint in enumerate(endpoints)]
    try:
        async with aiohttp.ClientSession() as session:
            async def settled_on(group: list[str]) -> bool:
                """Every key right from every worker of ``group``, after an assignment with just ``group``.

                While waiting, any value answered must already be the final count.
                """
                right = await _every_key_right(session, group, expected, settled=True)
                return right and all([await _members(session, endpoint) == set(group) for endpoint in group])

            for worker in workers[:2]:
                worker.start()
            await produce(kafka_bootstrap, source, lines)
            await while_running(workers[:2], wait_for(
                lambda: _every_key_right(session, endpoints[:2], expected, settled=False), timeout=60,
                message="every count from both workers"))
            await while_running(workers[:2], wait_for(lambda: settled_on(endpoints[:2]), timeout=30,
                                                      message="both workers in the assignment"))

            workers[2].start()  # a third joins: tasks move; every answer is right or says "retry"
            await while_running(workers, wait_for(lambda: settled_on(endpoints), timeout=60,
                                                  message="every count from all three after the third joined"))

            assert await workers[1].stop() == 0  # one leaves: its tasks move to the other two
            rest = [endpoints[0], endpoints[2]]
            await while_running([workers[0], workers[2]], wait_for(
                lambda: settled_on(rest), timeout=60, message="every count from the two workers left"))
    finally:
        for worker in workers:
            if worker.running:
                await worker.stop()
