"""The interactive query server without a broker: real stores and real HTTP on loopback.

Tasks' stores are opened as the worker opens them (memory layout, write caches) and
filled through the same store classes processors write with; a commit is the cache's
``apply``. Two servers stand for two workers, with the assignment told to both.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import orjson
import pydantic
import pytest

from apps.sessions import build as build_sessions
from apps.wordcount import build as build_wordcount
from streamer.errors import ConfigError
from streamer.partitioner import default_partition
from streamer.runtime.cluster import ClusterMetadata, TaskId
from streamer.runtime.global_store import GlobalStore
from streamer.runtime.query_server import QueryServer
from streamer.runtime.task_stores import TaskStores, open_task_stores
from streamer.serde import INT, JSON, STRING
from streamer.state import timestamped
from streamer.state.session_store import SessionStore
from streamer.state.typed_store import TypedStore
from streamer.state.window_store import WindowStore
from streamer.topology.topology import GlobalStoreSpec, SourceSpec, StoreSpec, SubTopology, Topology
from streamer.typed_serde import typed

APP = "iq"
STORE = "word-counts"
REPARTITION = f"{APP}-words-by-word-repartition"
WORDS = ["apple", "banana", "bandana", "cherry", "date", "elder", "fig", "grape", "kiwi", "lime"]


def _open(topology: Topology, task: TaskId, tmp_path: Path) -> TaskStores:
    sub = topology.subtopologies[task[0]]
    return open_task_stores(sub, task[1], tmp_path / f"{task[0]}_{task[1]}", "memory", APP)


def _count_words(stores: dict[TaskId, TaskStores], partitions: int, commit: bool = True) -> dict[str, int]:
    """Each word's count (its length) in the task of its partition, as the count processor writes it."""
    counts = {word: len(word) for word in WORDS}
    for word, count in counts.items():
        task = (1, default_partition(word.encode(), partitions))
        TypedStore(stores[task][STORE], STRING, JSON, timestamped=True).put(word, count, 1000 + count)
    if commit:
        for task_stores in stores.values():
            task_stores.apply()
    return counts


class Workers:
    """Query servers on loopback, each with its cluster view and the tasks it runs."""

    def __init__(self, topology: Topology, partition_counts: dict[str, int]) -> None:
        self.topology = topology
        self.partition_counts = partition_counts
        self.servers: list[QueryServer] = []
        self.session = aiohttp.ClientSession()

    async def start(self, running: Callable[[], dict[TaskId, TaskStores]],
                    global_stores: dict[str, GlobalStore] | None = None) -> QueryServer:
        cluster = ClusterMetadata(self.topology, APP, None)
        cluster.set_partition_counts(self.partition_counts)
        server = QueryServer(cluster, running, global_stores, host="127.0.0.1", port=0)
        await server.start()
        cluster.local_endpoint = f"127.0.0.1:{server.port}"
        self.servers.append(server)
        return server

    async def get(self, server: QueryServer, path: str, **params: str) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.session.get(f"http://127.0.0.1:{server.port}{path}", params=params) as response:
            return response.status, await response.json(), response

    async def close(self) -> None:
        for server in self.servers:
            await server.close()
        await self.session.close()


@pytest.fixture
async def workers() -> AsyncIterator[Callable[..., Workers]]:
    made: list[Workers] = []

    def make(topology: Topology, partition_counts: dict[str, int]) -> Workers:
        made.append(Workers(topology, partition_counts))
        return made[-1]

    yield make
    for item in made:
        await item.close()


async def test_one_worker_answers_gets_and_scans_of_its_tasks(workers, tmp_path) -> None:
    topology = build_wordcount().build()
    stores = {(1, p): _open(topology, (1, p), tmp_path) for p in range(2)}
    counts = _count_words(stores, 2)
    cluster = workers(topology, {REPARTITION: 2})
    server = await cluster.start(lambda: stores)

    status, body, _ = await cluster.get(server, f"/stores/{STORE}/keys/apple")
    assert status == 200
    assert body == {"store": STORE, "key": "apple", "partition": default_partition(b"apple", 2),
                    "host": server.cluster.local_endpoint, "value": 5, "timestamp": 1005}
    status, body, _ = await cluster.get(server, f"/stores/{STORE}/keys/mango")
    assert (status, body["error"]) == (404, "not_found")
    status, body, _ = await cluster.get(server, "/stores/nope/keys/apple")
    assert (status, body["error"]) == (404, "unknown_store") and STORE in body["message"]
    status, body, _ = await cluster.get(server, f"/stores/{STORE}/everything")
    assert (status, body["error"]) == (404, "unknown_path") and "/metadata" in body["message"]

    status, body, _ = await cluster.get(server, f"/stores/{STORE}/all")
    assert status == 200 and body["partitions"] == [0, 1]
    assert {entry["key"]: entry["value"] for entry in body["entries"]} == counts
    _, body, _ = await cluster.get(server, f"/stores/{STORE}/range", **{"from": "b", "to": "d"})
    assert sorted(entry["key"] for entry in body["entries"]) == ["banana", "bandana", "cherry"]
    _, body, _ = await cluster.get(server, f"/stores/{STORE}/prefix/ban")
    assert sorted((entry["key"], entry["value"]) for entry in body["entries"]) == [("banana", 6), ("bandana", 7)]

    status, body, _ = await cluster.get(server, "/metadata")
    assert status == 200 and body["assignment_known"] is False and body["rebalancing"] is False
    (host,) = body["hosts"]
    assert host["endpoint"] == server.cluster.local_endpoint and host["active"] == {STORE: [0, 1]}
    status, body, _ = await cluster.get(server, f"/metadata/stores/{STORE}/keys/apple")
    assert status == 200 and body["active"] == server.cluster.local_endpoint
    assert body["partition"] == default_partition(b"apple", 2) and body["standbys"] == []


async def test_reads_see_committed_state_only(workers, tmp_path) -> None:
    topology = build_wordcount().build()
    stores = {(1, 0): _open(topology, (1, 0), tmp_path)}
    server_side = workers(topology, {REPARTITION: 1})
    server = await server_side.start(lambda: stores)
    typed = TypedStore(stores[(1, 0)][STORE], STRING, JSON, timestamped=True)
    typed.put("apple", 1, 10)
    status, _, _ = await server_side.get(server, f"/stores/{STORE}/keys/apple")
    assert status == 404  # written, not committed
    stores[(1, 0)].apply()
    typed.put("apple", 2, 20)
    typed.put("kiwi", 1, 20)
    _, body, _ = await server_side.get(server, f"/stores/{STORE}/keys/apple")
    assert (body["value"], body["timestamp"]) == (1, 10)
    _, body, _ = await server_side.get(server, f"/stores/{STORE}/all")
    assert body["entries"] == [{"key": "apple", "value": 1}]
    stores[(1, 0)].discard()  # the transaction aborted: the committed value stands
    _, body, _ = await server_side.get(server, f"/stores/{STORE}/keys/apple")
    assert body["value"] == 1


async def test_any_worker_answers_for_every_key_by_forwarding(workers, tmp_path) -> None:
    topology = build_wordcount().build()
    stores = {(1, p): _open(topology, (1, p), tmp_path) for p in range(2)}
    counts = _count_words(stores, 2)
    cluster = workers(topology, {REPARTITION: 2})
    first = await cluster.start(lambda: {(1, 0): stores[(1, 0)]})
    second = await cluster.start(lambda: {(1, 1): stores[(1, 1)]})
    endpoints = {first.cluster.local_endpoint: {(1, 0)}, second.cluster.local_endpoint: {(1, 1)}}
    for server in (first, second):
        server.cluster.update(endpoints, {first.cluster.local_endpoint: {(1, 1)}})

    for server in (first, second):
        for word, count in counts.items():
            status, body, _ = await cluster.get(server, f"/stores/{STORE}/keys/{word}")
            partition = default_partition(word.encode(), 2)
            assert status == 200 and body["value"] == count and body["partition"] == partition
            assert body["host"] == (first, second)[partition].cluster.local_endpoint
        _, body, _ = await cluster.get(server, f"/stores/{STORE}/all")
        assert body["partitions"] == [0, 1]
        assert {entry["key"]: entry["value"] for entry in body["entries"]} == counts
        status, body, _ = await cluster.get(server, f"/stores/{STORE}/keys/mango")
        assert (status, body["error"]) == (404, "not_found")
    status, body, _ = await cluster.get(first, f"/stores/{STORE}/all", local="true")
    assert body["partitions"] == [0] and len(body["entries"]) == sum(
        1 for word in WORDS if default_partition(word.encode(), 2) == 0)
    _, body, _ = await cluster.get(first, "/metadata")
    assert body["assignment_known"] is True
    assert [(h["endpoint"], h["active"], h["standby"]) for h in body["hosts"]] == sorted([
        (first.cluster.local_endpoint, {STORE: [0]}, {STORE: [1]}),
        (second.cluster.local_endpoint, {STORE: [1]}, {})])
    word = next(w for w in WORDS if default_partition(w.encode(), 2) == 1)
    _, body, _ = await cluster.get(first, f"/metadata/stores/{STORE}/keys/{word}")
    assert (body["active"], body["standbys"]) == (second.cluster.local_endpoint, [first.cluster.local_endpoint])


async def test_moving_tasks_get_a_retryable_answer(workers, tmp_path) -> None:
    topology = build_wordcount().build()
    stores = {(1, p): _open(topology, (1, p), tmp_path) for p in range(2)}
    _count_words(stores, 2)
    cluster = workers(topology, {REPARTITION: 2})
    server = await cluster.start(lambda: {(1, 0): stores[(1, 0)]})
    far = next(w for w in WORDS if default_partition(w.encode(), 2) == 1)
    near = next(w for w in WORDS if default_partition(w.encode(), 2) == 0)

    async def refused(path: str, error: str) -> None:
        status, body, response = await cluster.get(server, path)
        assert (status, body["error"], body["retryable"]) == (503, error, True), body
        assert response.headers["Retry-After"] == "1"

    await refused(f"/stores/{STORE}/keys/{far}", "owner_unknown")  # no assignment told yet, not here
    await refused(f"/stores/{STORE}/all", "owner_unknown")
    server.cluster.mark_rebalancing()
    await refused(f"/stores/{STORE}/keys/{near}", "rebalancing")
    await refused(f"/stores/{STORE}/range", "rebalancing")
    _, body, _ = await cluster.get(server, "/metadata")
    assert body["rebalancing"] is True
    server.cluster.update({server.cluster.local_endpoint: {(1, 0)}, "127.0.0.1:9": {(1, 1)}}, {})
    await refused(f"/stores/{STORE}/keys/{far}", "owner_unreachable")
    status, _, _ = await cluster.get(server, f"/stores/{STORE}/keys/{near}")
    assert status == 200
    await refused(f"/stores/{STORE}/keys/{far}?local=true", "not_hosted")


async def test_window_and_session_stores(workers, tmp_path) -> None:
    topology = build_sessions().build()
    sub = topology.subtopologies[0]
    specs = {spec.name: spec for spec in sub.stores}
    task_stores = _open(topology, (0, 0), tmp_path)
    windows = WindowStore(task_stores["views-per-minute"], specs["views-per-minute"].retention_ms or 0)
    for start, views in ((0, 2), (60_000, 1), (120_000, 4)):
        windows.put(b"ann", start, timestamped.encode(start + 5, JSON.serialize({"views": views}) or b""))
    sessions = SessionStore(task_stores["user-sessions"], specs["user-sessions"].retention_ms or 0)
    sessions.put(b"ann", 1_000, 9_000, JSON.serialize({"events": 3}) or b"")
    sessions.put(b"bob", 2_000, 2_000, JSON.serialize({"events": 1}) or b"")
    task_stores.apply()
    cluster = workers(topology, {"clickstream-views": 1})
    server = await cluster.start(lambda: {(0, 0): task_stores})

    status, body, _ = await cluster.get(server, "/stores/views-per-minute/windows/ann", **{"from": "1", "to": "120000"})
    assert status == 200
    assert body["windows"] == [{"start": 60_000, "value": {"views": 1}}, {"start": 120_000, "value": {"views": 4}}]
    _, body, _ = await cluster.get(server, "/stores/views-per-minute/windows", **{"from": "100000"})
    assert body["entries"] == [{"key": "ann", "start": 120_000, "value": {"views": 4}}]
    _, body, _ = await cluster.get(server, "/stores/user-sessions/sessions/ann")
    assert body["sessions"] == [{"start": 1_000, "end": 9_000, "value": {"events": 3}}]
    _, body, _ = await cluster.get(server, "/stores/user-sessions/all")
    assert sorted(entry["key"] for entry in body["entries"]) == ["ann", "bob"]
    status, body, _ = await cluster.get(server, "/stores/user-sessions/keys/ann")
    assert (status, body["error"]) == (400, "wrong_store_kind") and "/sessions/{key}" in body["message"]
    status, body, _ = await cluster.get(server, "/stores/views-per-minute/windows/ann", to="soon")
    assert (status, body["error"]) == (400, "bad_request")


async def test_key_and_value_formats(workers, tmp_path) -> None:
    spec = StoreSpec("by-id", key_serde=INT, value_serde=JSON)
    sub = SubTopology(0, [], [SourceSpec("source", ("ids",), None, False)], [], [spec])
    topology = Topology([sub], [])
    task_stores = _open(topology, (0, 0), tmp_path)
    typed = TypedStore(task_stores["by-id"], INT, JSON)
    typed.put(7, {"name": "seven"})
    typed.put(-1, [1, 2])
    task_stores.apply()
    cluster = workers(topology, {"ids": 1})
    server = await cluster.start(lambda: {(0, 0): task_stores})

    status, body, _ = await cluster.get(server, "/stores/by-id/keys/7")
    assert (status, body["key"], body["value"]) == (200, 7, {"name": "seven"})
    key = base64.urlsafe_b64encode(INT.serialize(-1) or b"").decode()
    _, body, _ = await cluster.get(server, f"/stores/by-id/keys/{key}", key_format="base64", value_format="base64")
    assert body["key"] == key and base64.urlsafe_b64decode(body["value"]) == b"[1,2]"
    status, body, _ = await cluster.get(server, "/stores/by-id/keys/seven")
    assert (status, body["error"]) == (400, "bad_key") and "key_format" in body["message"]
    status, body, _ = await cluster.get(server, "/stores/by-id/prefix/7")
    assert (status, body["error"]) == (400, "bad_request") and "base64" in body["message"]
    status, body, _ = await cluster.get(server, "/stores/by-id/keys/7", key_format="yaml")
    assert status == 400


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Model(pydantic.BaseModel):
    name: str
    tags: list[str]


class Record(msgspec.Struct):
    id: int
    at: datetime.date


async def test_typed_values_come_back_as_json_objects(workers, tmp_path) -> None:
    specs = [StoreSpec("points", key_serde=STRING, value_serde=typed(Point)),
             StoreSpec("models", key_serde=STRING, value_serde=typed(Model)),
             StoreSpec("records", key_serde=STRING, value_serde=typed(Record))]
    topology = Topology([SubTopology(0, [], [SourceSpec("source", ("things",), None, False)], [], specs)], [])
    task_stores = _open(topology, (0, 0), tmp_path)
    values = {"points": Point(1, 2), "models": Model(name="m", tags=["a"]),
              "records": Record(id=3, at=datetime.date(2026, 12, 2))}
    for spec in specs:
        TypedStore(task_stores[spec.name], STRING, spec.value_serde).put("k", values[spec.name])
    task_stores.apply()
    cluster = workers(topology, {"things": 1})
    server = await cluster.start(lambda: {(0, 0): task_stores})

    expected = {"points": {"x": 1, "y": 2}, "models": {"name": "m", "tags": ["a"]},
                "records": {"id": 3, "at": "2026-12-02"}}
    for store, value in expected.items():
        status, body, _ = await cluster.get(server, f"/stores/{store}/keys/k")
        assert (status, body["value"]) == (200, value)


async def test_a_taken_port_is_a_clear_error(workers, tmp_path) -> None:
    cluster = workers(build_wordcount().build(), {REPARTITION: 1})
    first = await cluster.start(dict)
    metadata = ClusterMetadata(cluster.topology, APP, f"127.0.0.1:{first.port}")
    with pytest.raises(ConfigError, match=f"cannot serve interactive queries on 127.0.0.1:{first.port}"):
        await QueryServer(metadata, dict).start()


async def _streamer_query(*args: str) -> tuple[int, str, str]:
    """`streamer query ...` as a process, while this event loop keeps serving the query server."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamer.cli", "query", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_streamer_query_picks_the_path_by_store_kind_and_waits_out_a_rebalance(workers, tmp_path) -> None:
    topology = build_sessions().build()
    specs = {spec.name: spec for spec in topology.subtopologies[0].stores}
    task_stores = _open(topology, (0, 0), tmp_path)
    windows = WindowStore(task_stores["views-per-minute"], specs["views-per-minute"].retention_ms or 0)
    for start in (0, 60_000):
        windows.put(b"ann", start, timestamped.encode(start, JSON.serialize({"views": start // 60_000}) or b""))
    SessionStore(task_stores["user-sessions"], specs["user-sessions"].retention_ms or 0).put(
        b"ann", 5, 9, JSON.serialize({"events": 2}) or b"")
    task_stores.apply()
    cluster = workers(topology, {"clickstream-views": 1})
    server = await cluster.start(lambda: {(0, 0): task_stores})
    endpoint = server.cluster.local_endpoint or ""

    code, out, _ = await _streamer_query("views-per-minute", "ann", "--from", "1", "--server", endpoint)
    assert code == 0 and orjson.loads(out)["windows"] == [{"start": 60_000, "value": {"views": 1}}]
    code, out, _ = await _streamer_query("views-per-minute", "--to", "0", "--server", endpoint)
    assert code == 0 and orjson.loads(out)["entries"] == [{"key": "ann", "start": 0, "value": {"views": 0}}]
    code, out, _ = await _streamer_query("user-sessions", "ann", "--from", "9", "--server", endpoint)
    assert code == 0 and orjson.loads(out)["sessions"] == [{"start": 5, "end": 9, "value": {"events": 2}}]
    code, out, _ = await _streamer_query("user-sessions", "ann", "--from", "10", "--server", endpoint)
    assert code == 0 and orjson.loads(out)["sessions"] == []
    code, _, err = await _streamer_query("user-sessions", "--prefix", "a", "--server", endpoint)
    assert code == 2 and "--prefix reads a key-value store" in err

    server.cluster.mark_rebalancing()
    code, _, err = await _streamer_query("user-sessions", "ann", "--wait", "0", "--server", endpoint)
    assert code == 2 and "rebalancing" in err
    asyncio.get_running_loop().call_later(0.5, server.cluster.update, {endpoint: {(0, 0)}}, {})
    code, out, _ = await _streamer_query("user-sessions", "ann", "--wait", "20", "--server", endpoint)
    assert code == 0 and len(orjson.loads(out)["sessions"]) == 1


async def test_a_global_table_is_answered_whole_by_any_worker(workers, tmp_path) -> None:
    table = GlobalStoreSpec(StoreSpec("countries", key_serde=STRING, value_serde=JSON), "countries-topic")
    topology = build_wordcount().build()
    topology.global_stores.append(table)
    store = GlobalStore(table, tmp_path / "global", "memory")
    store.write(0, [(b"fr", b'{"name":"France"}'), (b"de", b'{"name":"Germany"}')], 2)
    cluster = workers(topology, {REPARTITION: 2})
    server = await cluster.start(dict, {"countries": store})
    server.cluster.mark_rebalancing()  # a global table does not move: answered even now

    status, body, _ = await cluster.get(server, "/stores/countries/keys/fr")
    assert (status, body["value"]) == (200, {"name": "France"})
    _, body, _ = await cluster.get(server, "/stores/countries/all")
    assert [entry["key"] for entry in body["entries"]] == ["de", "fr"]
    status, body, _ = await cluster.get(server, "/stores/countries/keys/it")
    assert (status, body["error"]) == (404, "not_found")
    status, body, _ = await cluster.get(server, "/metadata/stores/countries/keys/fr")
    assert (status, body["error"]) == (400, "global_store")
    store.close()
