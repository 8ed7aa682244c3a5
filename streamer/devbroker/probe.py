"""Asks a dev broker whether it is up, from synchronous code (even inside a running event loop)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streamer.devbroker.config import HOST

T = TypeVar("T")


def port_open(port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code; in a helper thread if a loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_as_coroutine(factory))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="devbroker-probe") as pool:
        return pool.submit(asyncio.run, _as_coroutine(factory)).result()


async def _as_coroutine(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


async def live_broker_ids(bootstrap: str, timeout_ms: int = 5000) -> set[int]:
    """Node ids of the brokers the cluster's metadata lists as alive, asked via ``bootstrap``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms,
                                client_id="streamer-devbroker-probe")
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return {int(broker["node_id"]) for broker in cluster["brokers"]}


def answers(bootstrap: str, expected_ids: set[int]) -> bool:
    """True when a metadata request via ``bootstrap`` succeeds and lists every id in ``expected_ids``."""
    try:
        ids = run_sync(lambda: live_broker_ids(bootstrap))
    except (TimeoutError, KafkaError, OSError):  # any of these just means "not ready yet"
        return False
    return expected_ids <= ids
