"""Runs the driver's coroutines to completion from synchronous code.

The task graph is async (processors may be ``async def``), but the driver's API is
synchronous so that it reads the same in a plain test and in an async one. The driver
owns a private event loop. Called from a thread with no running loop it runs that loop
in place, so user code runs in the test's thread; called from inside a running loop
(an async test) it cannot nest loops, so it runs the private loop on one helper thread
and blocks until it is done.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")


class SyncRunner:
    """A private event loop, run either in the calling thread or on a helper thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._helper: ThreadPoolExecutor | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            coroutine.close()
            raise RuntimeError("the test driver is closed")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._loop.run_until_complete(coroutine)
        if self._helper is None:
            self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streamer-test-driver")
        return self._helper.submit(self._loop.run_until_complete, coroutine).result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self.run(self._loop.shutdown_asyncgens())
        finally:
            if self._helper is not None:
                self._helper.shutdown(wait=True)
                self._helper = None
            self._loop.close()
