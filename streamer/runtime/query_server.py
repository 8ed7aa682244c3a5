"""Interactive queries over HTTP: every worker answers for every key, reading committed state only.

A worker with ``application_server`` set serves its stores on that host:port (aiohttp).
A read of one key goes to the task that holds the key's partition (``ClusterMetadata``):
answered here if this worker runs that task, otherwise forwarded to the worker that does
(with ``local=true``, so a forwarded query is never forwarded again). A scan (range,
prefix, all) asks every partition's worker and joins the answers in partition order.
While tasks move (a rebalance, an owner not known yet, a task still restoring) the answer
is 503 with ``Retry-After`` and ``"retryable": true``: never a value from a task that
does not hold the key now.

Reads go to the store under each task's write cache (``committed_reads``): what the last
commit applied, never a write that a transaction may still roll back.

Keys in the URL are text turned into the key the store's key serde takes (``key_format``:
``string``, the default: the text, or a number for the int and float serdes, its UTF-8
bytes for the bytes serde; ``json``: the text parsed as JSON; ``base64``: URL-safe base64
of the serialized key, for any serde). Values come back as JSON; ``value_format=base64``
returns the serialized bytes instead, for values JSON cannot hold.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from streamer.config import split_host_port
from streamer.errors import ConfigError, StreamerError, TopologyError
from streamer.runtime.cluster import ClusterMetadata, TaskId
from streamer.runtime.store_views import SessionStoreView, StoreView, WindowStoreView, committed_reads, view_of
from streamer.runtime.task_core import task_id_of
from streamer.runtime.task_stores import TaskStores
from streamer.serde import BytesSerde, FloatSerde, IntSerde, JsonSerde, Serde, StringSerde
from streamer.state.segmented import MAX_TIME
from streamer.topology.topology import StoreSpec

if TYPE_CHECKING:
    from streamer.runtime.global_store import GlobalStore

log = logging.getLogger("streamer.queries")

#: What a client is told to wait before asking again while tasks move.
RETRY_AFTER_S = 1
#: A forwarded query gives up (and answers "retry") after this long.
FORWARD_TIMEOUT_S = 10.0

#: The running tasks' stores of this worker, by (sub-topology, partition).
RunningStores = Callable[[], Mapping[TaskId, TaskStores]]
View = StoreView | WindowStoreView | SessionStoreView
Json = dict[str, Any]


class _Refused(Exception):
    """A query answered with an error status: ``error`` is a short code, ``message`` says what to do."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def _retry(error: str, message: str) -> _Refused:
    return _Refused(503, error, message)


def _jsonable(obj: Any) -> Any:
    """orjson's fallback (it does dataclasses itself): bytes as base64 text, pydantic models and
    msgspec Structs as their plain data, sets as lists."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.urlsafe_b64encode(bytes(obj)).decode()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(obj, msgspec.Struct):
        return msgspec.to_builtins(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    raise TypeError(f"a {type(obj).__name__} is not JSON-able; ask with value_format=base64 (or key_format=base64)")


def _respond(status: int, body: Json, retry: bool = False) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if retry else None
    return web.Response(status=status, body=orjson.dumps(body, default=_jsonable), headers=headers,
                        content_type="application/json")


class _Query:
    """One request's store, options and key conversions (the store's serdes and the formats asked)."""

    def __init__(self, request: web.Request, cluster: ClusterMetadata) -> None:
        self.request = request
        self.store = request.match_info["store"]
        try:
            self.spec: StoreSpec = cluster.spec(self.store)
        except TopologyError as error:
            raise _Refused(404, "unknown_store", str(error)) from None
        if self.spec.kind == "buffer":
            raise _Refused(400, "internal_store", f"store {self.store} is an internal buffer of results waiting "
                                                  "for their window to close; read the windowed aggregation's store")
        query = request.query
        self.key_format = query.get("key_format", "string")
        self.value_format = query.get("value_format", "json")
        if self.key_format not in ("string", "json", "base64"):
            raise _Refused(400, "bad_request", f"key_format must be string, json or base64, not {self.key_format!r}")
        if self.value_format not in ("json", "base64"):
            raise _Refused(400, "bad_request", f"value_format must be json or base64, not {self.value_format!r}")
        self.local = query.get("local", "false").lower() in ("1", "true", "yes")

    def need_kind(self, *kinds: str) -> None:
        kind = self.spec.kind
        if kind not in kinds:
            hint = {"window": "/windows/{key}", "session": "/sessions/{key}"}.get(kind, "/keys/{key}")
            raise _Refused(400, "wrong_store_kind", f"store {self.store} is a {kind} store; read it with "
                                                    f"/stores/{self.store}{hint}")

    def key(self, text: str) -> tuple[Any, bytes]:
        """``(key, serialized key)`` of a key given as text in the URL."""
        serde = self.spec.key_serde
        given = _unbase64(text) if self.key_format == "base64" else None
        try:
            if given is not None:
                return serde.deserialize(given), given
            key = orjson.loads(text) if self.key_format == "json" else _from_text(text, serde)
            data = serde.serialize(key)
        except Exception as error:  # the store's serde, maybe the user's: any failure means this text is no key
            raise _Refused(400, "bad_key", f"cannot turn {text!r} ({self.key_format}) into a key of store "
                                           f"{self.store}: {error}; try key_format=json or base64") from None
        if not isinstance(data, bytes):
            raise _Refused(400, "bad_key", f"the key serde of store {self.store} makes no bytes of {text!r}")
        return key, data

    def prefix_bytes(self, text: str) -> bytes:
        """The serialized-key prefix that the keys starting with ``text`` share."""
        serde = self.spec.key_serde
        if self.key_format == "base64":
            return _unbase64(text)
        if self.key_format == "string" and isinstance(serde, (StringSerde, BytesSerde)):
            return text.encode()
        if self.key_format == "string" and isinstance(serde, JsonSerde):
            return orjson.dumps(text)[:-1]  # a JSON string without its closing quote
        raise _Refused(400, "bad_request", f"a prefix of store {self.store}'s keys (key serde "
                                           f"{type(serde).__name__}) must be given as key_format=base64 of the "
                                           "serialized prefix")

    def time(self, name: str, default: int) -> int:
        text = self.request.query.get(name)
        if text is None:
            return default
        try:
            return int(text)
        except ValueError:
            raise _Refused(400, "bad_request", f"{name} must be epoch milliseconds, not {text!r}") from None

    def out_key(self, key: Any) -> Any:
        if self.key_format == "base64":
            return _base64(self.spec.key_serde.serialize(key))
        return key

    def out_value(self, value: Any) -> Any:
        if self.value_format == "base64":
            return _base64(self.spec.value_serde.serialize(value))
        return value


def _from_text(text: str, serde: Serde) -> Any:
    if isinstance(serde, IntSerde):
        return int(text)
    if isinstance(serde, FloatSerde):
        return float(text)
    if isinstance(serde, BytesSerde):
        return text.encode()
    return text


def _unbase64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _Refused(400, "bad_key", f"{text!r} is not URL-safe base64") from None


def _base64(data: bytes | None) -> str | None:
    return None if data is None else base64.urlsafe_b64encode(data).decode()


class QueryServer:
    """The HTTP endpoint of one worker's stores; see the module docstring and docs/operations.md."""

    def __init__(self, cluster: ClusterMetadata, running: RunningStores,
                 global_stores: Mapping[str, GlobalStore] | None = None, host: str | None = None,
                 port: int | None = None) -> None:
        if cluster.local_endpoint is None and (host is None or port is None):
            raise StreamerError("a query server needs application_server (host:port) to listen on")
        self.cluster = cluster
        self.running = running
        self.global_stores = global_stores or {}
        bind_host, bind_port = split_host_port(cluster.local_endpoint) if cluster.local_endpoint else ("", 0)
        self.host = host if host is not None else bind_host
        self.port = port if port is not None else bind_port
        cluster.local_tasks = lambda: set(self.running())
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        get = web.get
        app.add_routes([
            get("/metadata", self._metadata),
            get("/metadata/stores/{store}/keys/{key:.+}", self._key_metadata),
            get("/stores/{store}/keys/{key:.+}", self._get),
            get("/stores/{store}/range", self._range),
            get("/stores/{store}/prefix/{prefix:.+}", self._prefix),
            get("/stores/{store}/all", self._all),
            get("/stores/{store}/windows/{key:.+}", self._windows_of_key),
            get("/stores/{store}/windows", self._windows),
            get("/stores/{store}/sessions/{key:.+}", self._sessions_of_key),
        ])
        app.router.add_route("*", "/{path:.*}", self._unknown)
        return app

    async def _unknown(self, request: web.Request) -> web.Response:
        return _respond(404, {"error": "unknown_path", "message": f"no query at {request.method} {request.path}; "
                              "GET /metadata, or /stores/{store}/ and keys/{key}, range, prefix/{prefix}, all, "
                              "windows, windows/{key} or sessions/{key} (docs/operations.md#interactive-queries)"})

    async def start(self) -> None:
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S))
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as error:
            await self.close()
            raise ConfigError(f"cannot serve interactive queries on {self.host}:{self.port} ({error.strerror}): "
                              "is another worker or program using that port, or is the host not this machine's? "
                              "Give each worker its own application_server") from None
        server = site._server
        if self.port == 0 and isinstance(server, asyncio.Server):  # the port bound when any port was asked
            self.port = server.sockets[0].getsockname()[1]
        log.info("interactive queries on http://%s:%d/stores/", self.host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- metadata --------------------------------------------------------------------------

    async def _metadata(self, request: web.Request) -> web.Response:
        cluster = self.cluster
        return _respond(200, {"application_id": cluster.application_id, "endpoint": cluster.local_endpoint,
                              "rebalancing": cluster.rebalancing, "assignment_known": cluster.assignment_known,
                              "stores": cluster.store_kinds(), "hosts": cluster.hosts()})

    async def _key_metadata(self, request: web.Request) -> web.Response:
        async def answer(query: _Query) -> web.Response:
            key, data = query.key(request.match_info["key"])
            if self.cluster.is_global(query.store):
                raise _Refused(400, "global_store", f"store {query.store} is a global table's: every worker "
                                                    "holds all of it")
            found = self.cluster.key_metadata(query.store, data).to_json()
            return _respond(200, {"key": query.out_key(key), "rebalancing": self.cluster.rebalancing, **found})
        return await self._guarded(request, answer)

    # -- reads of one key ------------------------------------------------------------------

    async def _get(self, request: web.Request) -> web.Response:
        def read(query: _Query, view: View, key: Any) -> Json:
            assert isinstance(view, StoreView)
            if query.spec.timestamped:
                found = view.get_with_timestamp(key)
                if found is None:
                    raise _Refused(404, "not_found", f"store {query.store} has no key {key!r}")
                return {"value": query.out_value(found[0]), "timestamp": found[1]}
            if key not in view:
                raise _Refused(404, "not_found", f"store {query.store} has no key {key!r}")
            return {"value": query.out_value(view.get(key))}
        return await self._keyed(request, ("key_value",), read)

    async def _windows_of_key(self, request: web.Request) -> web.Response:
        def read(query: _Query, view: View, key: Any) -> Json:
            assert isinstance(view, WindowStoreView)
            found = view.fetch(key, query.time("from", 0), query.time("to", MAX_TIME))
            return {"windows": [{"start": start, "value": query.out_value(value)} for start, value in found]}
        return await self._keyed(request, ("window",), read)

    async def _sessions_of_key(self, request: web.Request) -> web.Response:
        def read(query: _Query, view: View, key: Any) -> Json:
            assert isinstance(view, SessionStoreView)
            found = view.find_sessions(key, query.time("earliest_end", 0), query.time("latest_start", MAX_TIME))
            return {"sessions": [{"start": s.start, "end": s.end, "value": query.out_value(value)}
                                 for s, value in found]}
        return await self._keyed(request, ("session",), read)

    async def _keyed(self, request: web.Request, kinds: tuple[str, ...],
                     read: Callable[[_Query, View, Any], Json]) -> web.Response:
        async def answer(query: _Query) -> web.Response:
            query.need_kind(*kinds)
            key, data = query.key(request.match_info["key"])
            head = {"store": query.store, "key": query.out_key(key)}
            if self.cluster.is_global(query.store):
                return _respond(200, {**head, "host": self.cluster.local_endpoint,
                                      **read(query, self.global_stores[query.store].view(), key)})
            self._refuse_while_rebalancing()
            task = self.cluster.task_for_key(query.store, data)
            stores = self.running().get(task)
            if stores is None:
                return await self._forward(query, task)
            view = view_of(query.spec, committed_reads(stores[query.store]))
            return _respond(200, {**head, "partition": task[1], "host": self.cluster.local_endpoint,
                                  **read(query, view, key)})
        return await self._guarded(request, answer)

    # -- scans -----------------------------------------------------------------------------

    async def _range(self, request: web.Request) -> web.Response:
        def read(query: _Query, view: View) -> list[Json]:
            assert isinstance(view, StoreView)
            low, high = (query.request.query.get(name) for name in ("from", "to"))
            start = None if low is None else query.key(low)[0]
            end = None if high is None else query.key(high)[0]
            return [{"key": query.out_key(k), "value": query.out_value(v)} for k, v in view.range(start, end)]
        return await self._scan(request, ("key_value",), read)

    async def _prefix(self, request: web.Request) -> web.Response:
        def read(query: _Query, view: View) -> list[Json]:
            assert isinstance(view, StoreView)
            found = view.prefix(query.prefix_bytes(request.match_info["prefix"]))
            return [{"key": query.out_key(k), "value": query.out_value(v)} for k, v in found]
        return await self._scan(request, ("key_value",), read)

    async def _all(self, request: web.Request) -> web.Response:
        def read(query: _Query, view: View) -> list[Json]:
            out = query.out_value
            if isinstance(view, WindowStoreView):
                return [{"key": query.out_key(k), "start": start, "value": out(v)} for k, start, v in view.all()]
            if isinstance(view, SessionStoreView):
                return [{"key": query.out_key(s.key), "start": s.start, "end": s.end, "value": out(v)}
                        for s, v in view.all()]
            return [{"key": query.out_key(k), "value": out(v)} for k, v in view.range()]
        return await self._scan(request, ("key_value", "window", "session"), read)

    async def _windows(self, request: web.Request) -> web.Response:
        def read(query: _Query, view: View) -> list[Json]:
            assert isinstance(view, WindowStoreView)
            found = view.fetch_all(query.time("from", 0), query.time("to", MAX_TIME))
            return [{"key": query.out_key(k), "start": start, "value": query.out_value(v)} for k, start, v in found]
        return await self._scan(request, ("window",), read)

    async def _scan(self, request: web.Request, kinds: tuple[str, ...],
                    read: Callable[[_Query, View], list[Json]]) -> web.Response:
        """Entries of every partition of the store, partition by partition, each in serialized-key order.

        With ``local=true`` only this worker's tasks (``partitions=`` names which); otherwise
        every partition, from whichever worker runs it.
        """
        async def answer(query: _Query) -> web.Response:
            query.need_kind(*kinds)
            if self.cluster.is_global(query.store):
                view = self.global_stores[query.store].view()
                return _respond(200, {"store": query.store, "entries": read(query, view)})
            self._refuse_while_rebalancing()
            running = self.running()
            tasks = self.cluster.tasks_of(query.store)
            if query.local:
                tasks = self._asked_partitions(query, tasks, running)
            parts: list[Awaitable[list[Json]]] = []
            for task in tasks:
                stores = running.get(task)
                if stores is None:
                    parts.append(self._forwarded_entries(query, task))
                else:
                    parts.append(_done(read(query, view_of(query.spec, committed_reads(stores[query.store])))))
            found = await asyncio.gather(*parts)
            return _respond(200, {"store": query.store, "partitions": [task[1] for task in tasks],
                                  "entries": [entry for part in found for entry in part]})
        return await self._guarded(request, answer)

    def _asked_partitions(self, query: _Query, tasks: list[TaskId],
                          running: Mapping[TaskId, TaskStores]) -> list[TaskId]:
        text = query.request.query.get("partitions")
        if text is None:
            return [task for task in tasks if task in running]
        try:
            asked = {int(part) for part in text.split(",")}
        except ValueError:
            raise _Refused(400, "bad_request", f"partitions must be numbers joined by commas, not {text!r}") from None
        return [task for task in tasks if task[1] in asked]

    async def _forwarded_entries(self, query: _Query, task: TaskId) -> list[Json]:
        status, body, _ = await self._ask_owner(query, task, {"partitions": str(task[1])})
        if status != 200:
            raise _Refused(status, body.get("error", "owner_failed"), body.get("message", f"status {status}"))
        entries: list[Json] = body["entries"]
        return entries

    # -- routing ---------------------------------------------------------------------------

    def _refuse_while_rebalancing(self) -> None:
        if self.cluster.rebalancing:
            raise _retry("rebalancing", "the application is rebalancing: tasks are moving between workers; "
                                        f"ask again in {RETRY_AFTER_S}s")

    async def _forward(self, query: _Query, task: TaskId) -> web.Response:
        status, body, retry = await self._ask_owner(query, task, {})
        return _respond(status, body, retry)

    async def _ask_owner(self, query: _Query, task: TaskId, extra: dict[str, str]) -> tuple[int, Json, bool]:
        """Ask the worker running ``task`` the same query with ``local=true``: (status, body, retryable)."""
        name = task_id_of(*task)
        if query.local:
            raise _retry("not_hosted", f"task {name} (partition {task[1]} of store {query.store}) is not running "
                                       f"on this worker ({self.cluster.local_endpoint}) now")
        owner = self.cluster.active_endpoint(task)
        if owner is None or owner == self.cluster.local_endpoint:
            raise _retry("owner_unknown", f"no worker is known to run task {name} (partition {task[1]} of store "
                                          f"{query.store}) now: it is being assigned or restored")
        assert self._client is not None
        url = URL(f"http://{owner}").with_path(query.request.rel_url.raw_path, encoded=True).with_query(
            {**query.request.query, **extra, "local": "true"})
        try:
            async with self._client.get(url) as response:
                body = orjson.loads(await response.read())
                return response.status, body, response.status == 503
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as error:
            raise _retry("owner_unreachable", f"worker {owner}, which runs task {name}, did not answer: "
                                              f"{error!r}") from None

    async def _guarded(self, request: web.Request, answer: Callable[[_Query], Awaitable[web.Response]]) -> web.Response:
        """Run a handler; a refusal becomes its JSON error answer (503s with Retry-After and retryable)."""
        try:
            return await answer(_Query(request, self.cluster))
        except _Refused as refused:
            retry = refused.status == 503
            body: Json = {"error": refused.error, "message": refused.message}
            if retry:
                body["retryable"] = True
            return _respond(refused.status, body, retry)
        except TopologyError as error:  # a global store asked by partition, counts not known yet
            return _respond(400, {"error": "bad_request", "message": str(error)})
        except orjson.JSONEncodeError as error:  # a value JSON cannot hold (see _jsonable)
            return _respond(500, {"error": "not_jsonable", "message": str(error)})


async def _done(entries: list[Json]) -> list[Json]:
    return entries
