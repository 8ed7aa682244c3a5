"""Restore progress of a worker's stores: metrics always, and a progress bar when stderr is a terminal.

The state manager's restore hooks feed it: a partition's restore begins with its record
count (changelog end minus start), fetches report records restored, and a task's restore
ends, done or not. Per store it counts the records to restore and restored, sets the
remaining records gauge, and on a terminal draws one rich progress line per store (done/total,
rate, time left). Off a terminal the restorer's own log lines report progress, so there is
one way per mode and no line twice.

Restored records can stay below the offsets to restore (a compacted changelog has gaps,
transaction markers are no records): a partition that ended counts as wholly done.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, \
    TimeRemainingColumn
from rich.text import Text

from streamer.runtime.metrics import WorkerMetrics
from streamer.runtime.state_manager import StateManager

#: Redraw the bar at most this often between a restore's begin and end.
REDRAW_EVERY_S = 0.25


class _RateColumn(ProgressColumn):
    """Records per second, as rich estimates it from the recent updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} records/s", style="progress.data.speed")


@dataclass
class _StoreRestore:
    """One store's restore across its restoring partitions (one per task)."""

    total: int = 0
    restored: int = 0
    #: records to restore of the partitions that ended
    finished: int = 0
    #: partition -> records to restore, of the partitions still restoring
    open: dict[int, int] = field(default_factory=dict)
    bar: TaskID | None = None

    @property
    def completed(self) -> int:
        return min(self.total, max(self.restored, self.finished))


class RestoreProgress:
    """Follows the restores of one worker; ``attach`` sets the state manager's hooks."""

    def __init__(self, metrics: WorkerMetrics, store_of_changelog: Mapping[str, str], console: Console | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self.store_of_changelog = store_of_changelog
        self.console = console if console is not None else Console(file=sys.stderr)
        #: draw a bar: the console is a terminal (a pipe or a file gets the restorer's log lines)
        self.bar = self.console.is_terminal
        self._clock = clock
        self._stores: dict[str, _StoreRestore] = {}
        self._progress: Progress | None = None
        self._drawn = 0.0
        #: log handlers writing to the bar's terminal, with their own stream, while the bar shows
        self._rerouted: list[tuple[logging.StreamHandler[Any], Any]] = []

    def attach(self, state: StateManager) -> None:
        state.on_restore_begin = self.begin
        state.on_restored = self.restored
        state.on_restore_end = self.end
        state.log_progress = not self.bar

    def begin(self, changelog: str, partition: int, records: int) -> None:
        store = self._store(changelog)
        restore = self._stores.get(store)
        if restore is None:
            restore = self._stores[store] = _StoreRestore()
        restore.open[partition] = records
        restore.total += records
        self.metrics.restore_began(store, records)
        self._report(store, restore)
        if self.bar:
            progress = self._bar()
            if restore.bar is None:
                restore.bar = progress.add_task(store, total=restore.total, completed=restore.completed)
            self._draw(force=True)

    def restored(self, changelog: str, count: int) -> None:
        store = self._store(changelog)
        self.metrics.restored(store, count)
        restore = self._stores.get(store)
        if restore is not None:
            restore.restored += count
            self._report(store, restore)
            self._draw()

    def end(self, changelog: str, partition: int) -> None:
        """A task's restore returned: its partition counts as done (or was given up with the task)."""
        store = self._store(changelog)
        restore = self._stores.get(store)
        if restore is None or partition not in restore.open:
            return  # nothing was left to restore
        restore.finished += restore.open.pop(partition)
        self._report(store, restore)
        if not restore.open:
            del self._stores[store]
        self._draw(force=True)
        if not self._stores and self._progress is not None:
            self._progress.stop()
            self._progress = None
            for handler, stream in self._rerouted:
                handler.setStream(stream)
            self._rerouted = []

    def _store(self, changelog: str) -> str:
        return self.store_of_changelog.get(changelog, changelog)

    def _report(self, store: str, restore: _StoreRestore) -> None:
        self.metrics.set_restore_remaining(store, restore.total - restore.completed)
        if self._progress is not None and restore.bar is not None:
            self._progress.update(restore.bar, total=restore.total, completed=restore.completed)

    def _bar(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("restoring [bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                TimeRemainingColumn(), console=self.console, auto_refresh=False, get_time=self._clock,
                redirect_stdout=False, redirect_stderr=False,
            )
            self._progress.start()
            self._route_logs()
        return self._progress

    def _route_logs(self) -> None:
        """Log lines for the bar's terminal go above the bar (through rich), not across it."""
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self.console.file:
                self._rerouted.append((handler, handler.setStream(FileProxy(self.console, handler.stream))))

    def _draw(self, force: bool = False) -> None:
        """Redraw, at most every REDRAW_EVERY_S unless ``force``: fetches come faster than eyes read."""
        if self._progress is None:
            return
        now = self._clock()
        if force or now - self._drawn >= REDRAW_EVERY_S:
            self._drawn = now
            self._progress.refresh()
