"""Kill a writer without closing its store: the reopened store's offset must never run ahead of its data."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crash_writer import record_key, record_value

from streamer.state import KeyValueStore, open_store, prefix_end

WRITER = Path(__file__).with_name("crash_writer.py")
#: Far past the 16 MiB memtable, so automatic (atomic) flushes happen before the kill.
KILL_AFTER_RECORDS = 300_000


def start_writer(directory: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WRITER), str(directory), mode],
                            stdout=subprocess.PIPE, text=True, cwd=WRITER.parent)


def assert_consistent(store: KeyValueStore) -> int:
    """Every record below the reported offset is present, none at or above it; returns the offset."""
    offset = store.changelog_offset()
    assert offset is not None and offset > 0
    assert store.get(b"last") == b"%d" % (offset - 1)
    present = store.range(b"rec:", record_key(offset))
    for number, (key, value) in enumerate(present):
        assert (key, value) == (record_key(number), record_value(number))
    assert number == offset - 1
    assert list(store.range(record_key(offset), prefix_end(b"rec:"))) == []
    return offset


def test_sigkill_mid_commit_leaves_offset_and_data_in_step(tmp_path: Path) -> None:
    writer = start_writer(tmp_path, "kill")
    assert writer.stdout is not None
    deadline = time.monotonic() + 120
    reported = 0
    try:
        while reported < KILL_AFTER_RECORDS:
            line = writer.stdout.readline()
            assert line, f"writer exited early with code {writer.poll()}"
            reported = int(line)
            assert time.monotonic() < deadline, "writer too slow"
    finally:
        writer.kill()
        writer.wait()
    store = open_store("rocksdb", tmp_path, "crash")
    offset = assert_consistent(store)
    assert offset <= reported + 1000  # at most the batch in flight when the kill landed
    store.close()


def test_exit_without_close_reopens_at_the_last_flush(tmp_path: Path) -> None:
    writer = start_writer(tmp_path, "exit-after-flush")
    out, _ = writer.communicate(timeout=120)
    assert writer.returncode == 0
    flushed = int(out.split()[0])
    store = open_store("rocksdb", tmp_path, "crash")
    assert assert_consistent(store) == flushed  # the WAL is off: unflushed batches are gone, restore redoes them
    store.close()


def _kill_after_lines(writer: subprocess.Popen[str], lines: int) -> None:
    """Kill ``writer`` once it printed ``lines`` lines: wherever in its loop that lands, the test must hold."""
    assert writer.stdout is not None
    deadline = time.monotonic() + 60
    try:
        for _ in range(lines):
            assert writer.stdout.readline(), f"writer exited early with code {writer.poll()}"
            assert time.monotonic() < deadline, "writer too slow"
    finally:
        writer.kill()
        writer.wait()


@pytest.mark.parametrize("deleted", [0, 1, 4, 9, 1000])
def test_sigkill_at_any_point_of_a_wipe_leaves_a_store_that_opens(tmp_path: Path, deleted: int,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """RocksDB's own delete goes file by file, and a kill in between left a store that failed every open
    (tests/state/test_damaged_store.py: "CURRENT missing"); a wipe now renames the store away first."""
    writer = start_writer(tmp_path, f"wipe-{deleted}")
    writer.communicate(timeout=120)
    assert writer.returncode == -signal.SIGKILL
    with caplog.at_level(logging.WARNING, "streamer.state"):
        store = open_store("rocksdb", tmp_path, "crash")
    assert store.changelog_offset() is None and list(store.range(None, None)) == []
    store.close()
    assert "damaged" not in caplog.text, "a wipe must never leave a store that needs rebuilding"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crash"], "the killed removal left files behind"


def test_sigkill_during_bulk_loads_leaves_data_at_or_ahead_of_the_offset(tmp_path: Path) -> None:
    """An SST file ingested but not yet recorded in the offset is newer data, which a replay overwrites alike."""
    _kill_after_lines(start_writer(tmp_path, "bulk"), 20)
    store = open_store("rocksdb", tmp_path, "crash")
    offset = store.changelog_offset()
    assert offset is not None and offset >= 20_000 - 1000  # at most the load in flight
    keys = [key for key, _ in store.range(b"rec:", prefix_end(b"rec:"))]
    assert keys[:offset] == [record_key(n) for n in range(offset)]
    assert len(keys) <= offset + 1000
    store.close()
    assert not list(tmp_path.glob("*.sst")), "a restore file of the killed load was left behind"
