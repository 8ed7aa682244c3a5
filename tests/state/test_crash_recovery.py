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
