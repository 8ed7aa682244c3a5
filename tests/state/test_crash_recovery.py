"""Kill a writer without closing its store: the reopened store's offset must never run ahead of its data."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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


def test_sigkill_during_wipes_never_leaves_a_store_that_does_not_open(tmp_path: Path, caplog) -> None:
    """RocksDB deletes a store file by file; a kill in between used to leave one that failed every open."""
    for trial in range(8):
        directory = tmp_path / str(trial)
        directory.mkdir()
        _kill_after_lines(start_writer(directory, "wipe"), 1 + trial % 3)
        store = open_store("rocksdb", directory, "crash")  # raises if the kill left half a store
        offset = store.changelog_offset()
        if offset is not None:  # killed before the wipe deleted it, or after it wrote again
            assert_consistent(store)
        store.close()
        assert sorted(p.name for p in directory.iterdir()) == ["crash"], "a removal left files behind"
    assert "damaged" not in caplog.text, "a wipe must never leave a store that needs rebuilding"


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
