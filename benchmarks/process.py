"""A contender's process: started in its own session, watched for peak RSS and CPU time, stopped by its id.

Peak RSS comes from ``VmHWM`` in ``/proc/<pid>/status`` (the kernel's high-water mark of
resident memory), read for the process and any descendants while it runs and once more
just before it is stopped; a process's figure is its own peak, descendants' peaks add up.
CPU time is user plus system time from ``/proc/<pid>/stat``, the latest reading of each
process added up. On a noisy machine it is the steadier figure: another process taking
a core stretches the wall clock of a run far more than the CPU time it needs.
No dependency needed, and a JVM and a Python process are measured the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

STOP_GRACE_S = 20.0
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def vm_hwm_kb(pid: int) -> int | None:
    """The peak resident set of ``pid`` in KiB, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time ``pid`` has used so far, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # After the command name (which may hold spaces, so split at its closing parenthesis)
    # come state, then 10 more fields, then utime and stime (fields 14 and 15 of proc(5)).
    fields = stat.rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children of all its threads, recursively)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except (FileNotFoundError, PermissionError):
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{tid}/children").read_text().split()
            except (FileNotFoundError, PermissionError, ProcessLookupError):
                continue
            for child in map(int, children):
                found.append(child)
                pending.append(child)
    return found


class ContenderProcess:
    """One contender run's process; output goes to ``log_path``."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.argv, self.log_path = argv, log_path
        self.peaks: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        self.started = time.perf_counter()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def sample(self) -> None:
        """Record the current peak RSS and CPU time of the process and its descendants."""
        for pid in [self.pid, *descendants(self.pid)]:
            peak = vm_hwm_kb(pid)
            if peak is not None and peak > self.peaks.get(pid, 0):
                self.peaks[pid] = peak
            used = cpu_seconds(pid)
            if used is not None:
                self.cpu[pid] = used

    @property
    def peak_rss_mb(self) -> float:
        return sum(self.peaks.values()) / 1024

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu.values())

    def stop(self, grace_s: float = STOP_GRACE_S) -> int:
        """SIGTERM the process group, SIGKILL it after ``grace_s``; returns the exit code."""
        if self.popen.poll() is not None:
            return self.popen.returncode  # reaped: its pid (and group id) may belong to another now
        self.sample()
        self._signal(signal.SIGTERM)
        try:
            return self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)  # not reaped yet, so the group id is still ours
            return self.popen.wait()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)  # the group is ours: start_new_session made pid its leader
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 25) -> str:
        """The last lines of the process's output."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 32 * 1024))
                text = handle.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])
