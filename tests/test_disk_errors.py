"""A state directory that is full or cannot be written stops the worker at start with one clear line.

Checked before any store opens (streamer.runtime.state_manager.check_state_dir), so nothing is
half written. Full and read-only file systems are small tmpfs mounts, which needs root (the
tests skip without it); a state_dir under a regular file fails for everyone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.config import StreamerConfig
from streamer.errors import StateStoreError
from streamer.runtime.state_manager import StateManager
from tests.workers import run_cli


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory: Path) -> None:
    """Write until the file system is full."""
    with open(directory / "filler", "wb") as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(bytes(64 * 1024))
                handle.flush()
        with contextlib.suppress(OSError):
            os.fsync(handle.fileno())


def _state(directory: Path, store: str = "rocksdb") -> StreamerConfig:
    return StreamerConfig(application_id="disk-app", state_dir=str(directory), state_store=store)  # type: ignore[arg-type]


def test_a_state_dir_under_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(StateStoreError) as raised:
        StateManager(_state(tmp_path / "a-file" / "state"))
    message = str(raised.value)
    assert f"state directory {tmp_path / 'a-file' / 'state' / 'disk-app'} is not usable" in message, message
    assert "give the worker a directory it can write" in message


def test_a_read_only_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as mount:
        with pytest.raises(StateStoreError, match="Read-only file system; give the worker a directory it can write"):
            StateManager(_state(mount))
        StateManager(_state(mount, "memory"))  # in-memory stores keep nothing there


def test_a_full_state_dir_is_a_clear_error_and_leaves_nothing_behind(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "full", "size=512k") as mount:
        (mount / "disk-app").mkdir()
        _fill(mount)
        with pytest.raises(StateStoreError, match="No space left on device; free space on its file system"):
            StateManager(_state(mount))
        assert sorted(p.name for p in (mount / "disk-app").iterdir()) == []  # no probe or store left
        (mount / "filler").unlink()
        assert StateManager(_state(mount)).root == mount / "disk-app"  # once there is room it starts


@pytest.mark.broker
async def test_streamer_run_exits_2_with_one_line_on_a_full_state_dir(kafka_bootstrap: str, new_topic,
                                                                      tmp_path: Path) -> None:
    source = await new_topic("disk-lines", partitions=1)
    output = await new_topic("disk-counts", partitions=1)
    with _tmpfs(tmp_path / "full", "size=512k") as mount:
        _fill(mount)
        result = run_cli("run", "apps.wordcount:topology", "--application-id", "disk-wc", "--bootstrap-servers",
                         kafka_bootstrap, "--state-dir", str(mount), "--app-setting", f"input={source}",
                         "--app-setting", f"output={output}", timeout=60)
    errors = [line for line in result.stderr.splitlines() if line.startswith("streamer: error: ")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-3000:]
    assert f"state directory {mount / 'disk-wc'} is not usable: No space left on device" in errors[0], errors[0]
