"""The worker's HTTP endpoint for operators: /metrics, /health and /ready on ``metrics_port``.

asyncio's own server with just enough HTTP/1.1 for probes and Prometheus scrapes (one
GET per connection, then close): no web framework is needed for three read-only paths.
``/health`` answers 200 while the poll loop keeps beating (a wedged loop is what a
liveness probe must catch); ``/ready`` answers 200 once the worker is a member of its
group and every assigned task is restored and running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST

from streamer.runtime.metrics import WorkerMetrics

log = logging.getLogger("streamer.health")

#: The poll loop beats at least every poll timeout plus a commit; silence this long means it is stuck.
HEALTH_STALE_S = 30.0
_READ_TIMEOUT_S = 5.0
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class Heartbeat:
    """Monotonic time of the poll loop's last turn; ``beat`` is one float store per turn."""

    def __init__(self) -> None:
        self.last: float | None = None

    def beat(self) -> None:
        self.last = time.monotonic()

    def alive(self, stale_s: float = HEALTH_STALE_S) -> bool:
        return self.last is not None and time.monotonic() - self.last < stale_s


class HealthServer:
    """Serves the three paths for one worker; ``ready`` says whether the worker is ready to serve."""

    def __init__(self, metrics: WorkerMetrics, heartbeat: Heartbeat, ready: Callable[[], bool],
                 host: str = "0.0.0.0", port: int = 0) -> None:
        self.metrics = metrics
        self.heartbeat = heartbeat
        self.ready = ready
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]  # the one bound when port 0 was asked
        log.info("metrics and health on http://%s:%d/metrics, /health, /ready", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a request line's method and path."""
        path = path.split("?", 1)[0]
        if path not in ("/metrics", "/health", "/ready"):
            return 404, "text/plain", b"not found; try /metrics, /health or /ready\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET and HEAD\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, self.metrics.exposition()
        if path == "/health":
            alive = self.heartbeat.alive()
            return (200, "text/plain", b"alive\n") if alive else (503, "text/plain", b"poll loop not running\n")
        ready = self.ready()
        return (200, "text/plain", b"ready\n") if ready else (503, "text/plain", b"not ready\n")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(parts) != 3:
                status, kind, body = 400, "text/plain", b"bad request\n"
                method = "GET"
            else:
                method, path, _ = parts
                status, kind, body = self.respond(method, path)
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Bad Request')}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
                + (b"" if method == "HEAD" else body)
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # a client that hung up or never sent a request gets nothing
        finally:
            writer.close()
