"""What a worker's state directory says about it: its process id, and the task state it holds.

The assignor needs both when the worker joins its group: a process id that survives
restarts, and per task directory the changelog offsets its stores reached, so the
leader can compute how far behind each copy is. Open stores answer themselves; the
directory of a task that is not open carries a checkpoint written when its stores
closed (a lower bound after a crash: the stores only ever move forward from it).
Task directories nobody uses any more are removed after ``state_cleanup_delay_ms``.

The checkpoint is only this report: a store restores from the changelog offset it keeps
itself, in the same RocksDB write as its data. So an unreadable checkpoint costs nothing
but a report of no state (the assignor's safe side), and never the store.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Container
from pathlib import Path

import orjson

from streamer.runtime.task_assignment import TaskId
from streamer.runtime.task_stores import TaskStores
from streamer.state.files import finish_removals, remove_dir, write_atomically

log = logging.getLogger("streamer.state")

PROCESS_ID_FILE = "streamer-process-id"
CHECKPOINT_FILE = ".checkpoint"
_TASK_DIR = re.compile(r"(\d+)_(\d+)")


def process_id(root: Path) -> str:
    """This worker's UUID, kept in its state directory so that a restart is recognised."""
    path = root / PROCESS_ID_FILE
    try:
        return str(uuid.UUID(path.read_text().strip()))
    except (FileNotFoundError, ValueError):
        pass
    root.mkdir(parents=True, exist_ok=True)
    new = str(uuid.uuid4())
    write_atomically(path, new.encode())
    return new


def offset_sum(stores: TaskStores) -> int:
    """The changelog offsets the task's logged stores reached, summed (what lags are computed from)."""
    return sum(stores[name].store.changelog_offset() or 0 for name in stores.changelogs)


def write_checkpoint(task_dir: Path, stores: TaskStores) -> None:
    """Record the stores' changelog offsets before they close, for the next join's report.

    The stores are flushed first (their memtables are lost on a kill -9: the WAL is off), so
    a checkpoint never claims more than the disk holds.
    """
    offsets = {topic: stores[name].store.changelog_offset() for name, topic in stores.changelogs.items()}
    if not task_dir.is_dir() or not offsets:
        return
    stores.flush()
    write_atomically(task_dir / CHECKPOINT_FILE, orjson.dumps(offsets))


def task_dirs(root: Path) -> dict[TaskId, Path]:
    """Task directories under ``root`` (``<sub-topology>_<partition>``)."""
    found: dict[TaskId, Path] = {}
    if root.is_dir():
        for entry in root.iterdir():
            match = _TASK_DIR.fullmatch(entry.name)
            if match and entry.is_dir():
                found[(int(match[1]), int(match[2]))] = entry
    return found


def checkpointed_offsets(root: Path, stateful: Container[int]) -> dict[TaskId, int]:
    """Offset sums of the checkpoints in the task directories of stateful sub-topologies."""
    sums: dict[TaskId, int] = {}
    for task, directory in task_dirs(root).items():
        if task[0] not in stateful:
            continue
        path = directory / CHECKPOINT_FILE
        try:
            offsets = orjson.loads(path.read_bytes())
            sums[task] = sum(int(offset or 0) for offset in offsets.values())
        except FileNotFoundError:
            continue
        except (OSError, orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as error:
            # reported as no state, the safe side; the stores are checked when they open
            log.warning("unreadable checkpoint %s (%r); reporting no state for task %d_%d", path, error, *task)
    return sums


def remove_unused(root: Path, in_use: Container[TaskId], delay_s: float, now: float | None = None) -> list[TaskId]:
    """Delete task directories not in use whose stores closed more than ``delay_s`` ago."""
    now = time.time() if now is None else now
    finish_removals(root)
    removed = []
    for task, directory in task_dirs(root).items():
        if task in in_use:
            continue
        marker = directory / CHECKPOINT_FILE
        try:
            released = (marker if marker.exists() else directory).stat().st_mtime
        except OSError:
            continue
        if now - released >= delay_s:
            remove_dir(directory)  # in one step: a kill in the middle must not leave half a store
            removed.append(task)
    if removed:
        log.info("removed the state of tasks %s, unused for %.0fs", ", ".join(f"{s}_{p}" for s, p in sorted(removed)),
                 delay_s)
    return removed

