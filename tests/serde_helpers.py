"""What the serde broker tests share: a worker that runs while the test waits for its output."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from streamer.config import StreamerConfig
from streamer.runtime.worker import Worker
from streamer.topology.topology import Topology

T = TypeVar("T")


async def while_worker_runs(topology: Topology, bootstrap: str, state_dir: Path, waiting: Awaitable[T],
                            **settings: Any) -> T:
    """Await ``waiting`` while an at-least-once worker of ``topology`` runs (settings: the error handlers)."""
    config = StreamerConfig(application_id=f"serdes-{uuid.uuid4().hex[:8]}", bootstrap_servers=bootstrap,
                            state_dir=str(state_dir), commit_interval_ms=200, **settings)
    worker = Worker(topology, config)
    running = asyncio.create_task(worker.run())
    try:
        return await waiting
    finally:
        worker.stop()
        await running
