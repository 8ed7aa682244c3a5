"""Runs workers for integration tests: `streamer run` as real processes, or a Worker in this process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from streamer.config import StreamerConfig
from streamer.runtime.worker import Worker
from streamer.topology.topology import Topology
from tests.kafka_helpers import wait_for

STREAMER = [sys.executable, "-m", "streamer.cli"]


class WorkerProcess:
    """One `streamer run` process; its combined output goes to a log file for assertions."""

    def __init__(
        self,
        app: str,
        bootstrap: str,
        application_id: str,
        *,
        guarantee: str = "at_least_once",
        state_dir: str | None = None,
        app_settings: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
        name: str = "worker",
    ) -> None:
        self.name = name
        self.state_dir = state_dir or tempfile.mkdtemp(prefix=f"streamer-{name}-")
        self.log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self.args = STREAMER + [
            "run", app,
            "--bootstrap-servers", bootstrap,
            "--application-id", application_id,
            "--processing-guarantee", guarantee,
            "--state-dir", self.state_dir,
            "--commit-interval-ms", "200",
            "--set", "session_timeout_ms=6000",
            "--set", "heartbeat_interval_ms=1000",
        ]
        for key, value in (app_settings or {}).items():
            self.args += ["--app-setting", f"{key}={value}"]
        self.args += extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        cwd=Path(__file__).resolve().parent.parent)
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_for_log(self, text: str, timeout: float = 60.0, occurrences: int = 1) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.log().count(text) < occurrences:
            if not self.running:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            if loop.time() > deadline:
                raise AssertionError(f"{self.name} did not log {text!r} within {timeout}s:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.1)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.process.poll() is None:
            if loop.time() > deadline:
                self.process.send_signal(signal.SIGUSR1)  # the worker logs its asyncio tasks' stacks
                dumped = loop.time() + 5
                while "asyncio tasks on SIGUSR1" not in self.log() and loop.time() < dumped:
                    await asyncio.sleep(0.1)
                self.process.kill()
                raise AssertionError(f"{self.name} did not exit within {timeout}s after {sig}:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.05)
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def while_running(workers: list[WorkerProcess], awaitable: Any) -> Any:
    """Await ``awaitable``, failing at once with the worker's log if a worker exits meanwhile."""
    task = asyncio.ensure_future(awaitable)
    try:
        while not task.done():
            for worker in workers:
                if worker.process is not None and not worker.running:
                    raise AssertionError(
                        f"{worker.name} exited with {worker.process.returncode}:\n{worker.log()[-3000:]}"
                    )
            await asyncio.wait({task}, timeout=0.2)
        return task.result()
    finally:
        task.cancel()


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the `streamer` command to completion (for the error-path tests)."""
    return subprocess.run(STREAMER + list(args), capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parent.parent)


def assigned_tasks(log: str) -> set[str]:
    """The tasks a worker holds according to its last 'assigned tasks' log line."""
    lines = [line for line in log.splitlines() if "assigned tasks" in line]
    if not lines:
        return set()
    listed = lines[-1].split("assigned tasks", 1)[1].strip()
    return set() if listed == "none" else {t.strip() for t in listed.split(",")}



class InProcessWorker:
    """A worker of ``topology`` in this process (exactly-once, fast failure detection) until ``stop``."""

    def __init__(self, topology: Topology, app_id: str, bootstrap: str, state_dir: Path) -> None:
        config = StreamerConfig(application_id=app_id, bootstrap_servers=bootstrap, state_dir=str(state_dir),
                                commit_interval_ms=200, processing_guarantee="exactly_once",
                                session_timeout_ms=6000, heartbeat_interval_ms=1000)
        self.worker = Worker(topology, config)
        self.task = asyncio.create_task(self.worker.run())

    async def started(self) -> Worker:
        await wait_for(lambda: self.worker.started.is_set() or self.task.done(), timeout=60,
                       message="the worker to start")
        if self.task.done():
            await self.task  # raises what stopped it
        return self.worker

    async def stop(self) -> None:
        self.worker.stop()
        await self.task
