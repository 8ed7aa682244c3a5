"""Restore progress: the gauges in both modes, a rich bar on a terminal, the restorer's log lines off one."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import pty
import re
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from apps.wordcount import build
from streamer.config import StreamerConfig
from streamer.runtime.metrics import WorkerMetrics
from streamer.runtime.restore_progress import RestoreProgress
from streamer.runtime.state_manager import StateManager
from streamer.runtime.worker import Worker
from tests.kafka_helpers import consume_all, produce, wait_for
from tests.workers import STREAMER

#: Colours and cursor moves the bar is drawn with.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CHANGELOGS = {"app-counts-changelog": "counts", "app-totals-changelog": "totals"}


class Clock:
    """Time the test moves: rich's rate and time left come out the same on every run."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _value(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def _restore(progress: RestoreProgress, clock: Clock) -> list[tuple[float | None, ...]]:
    """Two partitions of one store, one of another; the first partition's changelog has gaps (compacted)."""
    gauges = []

    def seen() -> None:
        gauges.append(tuple(_value(progress.metrics, name, store="counts") for name in (
            "streamer_restore_records_to_restore_total", "streamer_restore_remaining_records",
            "streamer_restore_records_total")))

    progress.begin("app-counts-changelog", 0, 1000)
    progress.begin("app-counts-changelog", 1, 3000)
    progress.begin("app-totals-changelog", 0, 50)
    seen()
    for _ in range(4):
        clock.now += 1.0
        progress.restored("app-counts-changelog", 500)
        seen()
    progress.end("app-counts-changelog", 0)
    progress.end("app-totals-changelog", 0)
    clock.now += 1.0
    progress.restored("app-counts-changelog", 1500)
    progress.end("app-counts-changelog", 1)
    progress.end("app-counts-changelog", 2)  # a task with nothing to restore: no begin, no harm
    seen()
    return gauges


def test_the_gauges_follow_a_restore_and_end_at_zero() -> None:
    clock = Clock()
    progress = RestoreProgress(WorkerMetrics(), CHANGELOGS, Console(file=io.StringIO()), clock)
    assert not progress.bar
    assert _restore(progress, clock) == [
        (4000, 4000, None), (4000, 3500, 500), (4000, 3000, 1000), (4000, 2500, 1500), (4000, 2000, 2000),
        (4000, 0, 3500),
    ]
    assert _value(progress.metrics, "streamer_restore_remaining_records", store="totals") == 0
    assert _value(progress.metrics, "streamer_restore_records_to_restore_total", store="totals") == 50


def test_off_a_terminal_the_restorer_logs_and_no_bar_is_drawn() -> None:
    out = io.StringIO()
    state = StateManager(StreamerConfig(application_id="app"))
    progress = RestoreProgress(WorkerMetrics(), CHANGELOGS, Console(file=out), Clock())
    progress.attach(state)
    assert state.log_progress
    assert (state.on_restore_begin, state.on_restored, state.on_restore_end) == (
        progress.begin, progress.restored, progress.end)
    _restore(progress, Clock())
    assert out.getvalue() == ""


def test_on_a_terminal_a_bar_shows_each_store_and_the_restorer_keeps_quiet() -> None:
    out = io.StringIO()
    clock = Clock()
    state = StateManager(StreamerConfig(application_id="app"))
    progress = RestoreProgress(WorkerMetrics(), CHANGELOGS, Console(file=out, force_terminal=True, width=120), clock)
    progress.attach(state)
    assert not state.log_progress
    progress.begin("app-counts-changelog", 0, 4000)
    clock.now += 2.0
    progress.restored("app-counts-changelog", 1000)
    clock.now += 2.0
    progress.restored("app-counts-changelog", 1000)
    drawn = ANSI.sub("", out.getvalue())
    assert "restoring counts" in drawn and "2000/4000" in drawn and "500 records/s" in drawn
    assert "0:00:04" in drawn  # 2000 left at 500 records/s
    progress.end("app-counts-changelog", 0)
    assert "4000/4000" in ANSI.sub("", out.getvalue())
    assert progress._progress is None  # the display stopped with the last restore


def test_a_real_pseudo_terminal_gets_the_bar() -> None:
    """What the worker does: a console on a stderr that is a terminal draws the bar."""
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w") as terminal:  # closed after the restore: the reads below then end
            progress = RestoreProgress(WorkerMetrics(), CHANGELOGS, Console(file=terminal, width=100), Clock())
            assert progress.bar
            progress.begin("app-totals-changelog", 0, 50)
            progress.end("app-totals-changelog", 0)
        chunks = []
        while True:  # a pty hands its bytes over in pieces; all of them, until the closed end says EIO
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        drawn = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
        assert "restoring totals" in drawn and "50/50" in drawn
    finally:
        os.close(leader)


def test_log_lines_go_above_the_bar_while_it_shows() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logging.getLogger().addHandler(handler)
    try:
        progress = RestoreProgress(WorkerMetrics(), CHANGELOGS, Console(file=out, force_terminal=True, width=120),
                                   Clock())
        progress.begin("app-counts-changelog", 0, 10)
        assert handler.stream is not out  # through rich while the bar shows
        logging.getLogger("streamer.worker").warning("assigned tasks 1_0")
        progress.end("app-counts-changelog", 0)
        assert handler.stream is out
    finally:
        logging.getLogger().removeHandler(handler)
    drawn = ANSI.sub("", out.getvalue())
    assert drawn.count("assigned tasks 1_0") == 1
    assert drawn.index("assigned tasks 1_0") < drawn.rindex("10/10")  # the bar is drawn below the line


@pytest.mark.broker
async def test_a_worker_on_a_terminal_draws_its_restore_as_a_bar(kafka_bootstrap, new_topic, tmp_path,
                                                                  monkeypatch) -> None:
    """`streamer run` with stderr on a pseudo-terminal: the restore of its counts is a bar, then the usual logs."""
    source, output = await new_topic("bar-lines", partitions=1), await new_topic("bar-counts", partitions=1)
    await produce(kafka_bootstrap, source, [(None, f"to be {i}".encode()) for i in range(200)])
    app = f"bar-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("STREAMER_APP_INPUT", source)
    monkeypatch.setenv("STREAMER_APP_OUTPUT", output)
    first = Worker(build().build(), StreamerConfig(application_id=app, bootstrap_servers=kafka_bootstrap,
                                                   state_dir=str(tmp_path / "first"), state_store="memory",
                                                   commit_interval_ms=200))
    running = asyncio.create_task(first.run())
    try:
        await consume_all(kafka_bootstrap, output, 600, timeout=60)  # the changelog is complete once it stops
    finally:
        first.stop()
        await running

    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    process = subprocess.Popen(
        STREAMER + ["run", "apps.wordcount:topology", "--bootstrap-servers", kafka_bootstrap, "--application-id", app,
                    "--state-dir", str(tmp_path / "second"), "--state-store", "memory"],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=Path(__file__).resolve().parent.parent,
        env=dict(os.environ, TERM="xterm", COLUMNS="120"))
    os.close(follower)
    seen = bytearray()

    def drawn() -> str:
        with contextlib.suppress(BlockingIOError, OSError):
            while chunk := os.read(leader, 65536):
                seen.extend(chunk)
        return ANSI.sub("", seen.decode(errors="replace"))

    try:
        def done() -> tuple[str, str] | None:
            bars = re.findall(r"restoring word-counts\s.*?(\d+)/(\d+)", drawn())
            return bars[-1] if bars and bars[-1][0] == bars[-1][1] else None

        restored, total = await wait_for(done, timeout=60, message="the restore of the counts, drawn to its end")
        assert int(total) >= 202  # 'to', 'be' and 200 numbers
        await wait_for(lambda: re.search(r"restored \d+ records in", drawn()), message="the restorer's last line")
        assert "records so far" not in drawn()  # the bar, not the restorer's log lines
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert await asyncio.wait_for(asyncio.to_thread(process.wait), 60) == 0, drawn()[-3000:]
        finally:
            process.kill()
            os.close(leader)
