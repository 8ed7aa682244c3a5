"""Kills dev broker JVMs whose Python owner died without stopping them.

Run as a script (not imported): ``python -I _watchdog.py``. The owner keeps the write end
of this process's stdin and sends lines ``+PGID`` / ``-PGID`` (a JVM process group to
guard / no longer guard) and ``dPATH`` / ``uPATH`` (a directory to delete afterwards / not).
When stdin reaches EOF, the owner is gone (however it died, SIGKILL included): every
guarded group gets SIGTERM, then SIGKILL if still there after a grace period, and the
directories are removed. Standalone on purpose: it must start fast and import nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time

GRACE_S = 10.0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read_commands() -> tuple[set[int], list[str]]:
    groups: set[int] = set()
    directories: list[str] = []
    for raw in sys.stdin.buffer:
        line = raw.decode(errors="replace").rstrip("\n")
        kind, arg = line[:1], line[1:]
        if kind == "+":
            groups.add(int(arg))
        elif kind == "-":
            groups.discard(int(arg))
        elif kind == "d":
            directories.append(arg)
        elif kind == "u" and arg in directories:
            directories.remove(arg)
    return groups, directories


def main() -> int:
    # Ctrl-C in the owner's terminal must not take the watchdog down before the JVMs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups, directories = _read_commands()
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.1)  # nothing to wait on: the JVMs are not our children
    for pgid in groups:
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
