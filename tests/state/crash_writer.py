"""Child process for the crash tests: commits batches through a WriteCache, then dies unclean.

Record ``i`` of the changelog is the key ``rec:<i>``; the key ``last`` holds the newest
record number, so a reopened store can check that its data and its offset agree.

    python crash_writer.py DIR kill         commit forever, print each offset; the parent kills us
    python crash_writer.py DIR exit-after-flush   flush mid-way, commit more, then os._exit
    python crash_writer.py DIR wipe-K       commit and flush a few SST files, then wipe, with a kill -9 of
                                            ourselves after the wipe deleted K files
    python crash_writer.py DIR bulk         bulk load (a restore from empty) forever; the parent kills us
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from streamer.state import WriteCache, open_store

BATCH = 1000
PADDING = b"x" * 190


def record_key(number: int) -> bytes:
    return b"rec:%010d" % number


def record_value(number: int) -> bytes:
    return b"%010d" % number + PADDING


def commit_batch(cache: WriteCache, first: int) -> int:
    """Write records ``first .. first+BATCH-1`` and apply them; returns the next offset."""
    for number in range(first, first + BATCH):
        cache.put(record_key(number), record_value(number))
        cache.put(b"last", b"%d" % number)
    cache.apply(first + BATCH)
    return first + BATCH


def _kill_after_unlinks(count: int) -> None:
    """SIGKILL this process at its ``count``-th file deletion: a kill at an exact point of a removal."""
    unlink = os.unlink
    done = 0

    def counting(*args: Any, **kwargs: Any) -> None:
        nonlocal done
        if done == count:
            os.kill(os.getpid(), signal.SIGKILL)
        done += 1
        unlink(*args, **kwargs)

    os.unlink = counting  # type: ignore[assignment]  # shutil.rmtree looks it up at every call


def main(directory: Path, mode: str) -> None:
    store = open_store("rocksdb", directory, "crash")
    cache = WriteCache(store)
    offset = 0
    if mode == "kill":
        while True:
            offset = commit_batch(cache, offset)
            print(offset, flush=True)
    if mode.startswith("wipe-"):
        for _ in range(8):  # an SST file each
            offset = commit_batch(cache, offset)
            store.flush()
        _kill_after_unlinks(int(mode.removeprefix("wipe-")))
        store.wipe()
        os.kill(os.getpid(), signal.SIGKILL)  # fewer files than K: killed after the wipe
    if mode == "bulk":
        while True:
            store.bulk_load({record_key(n): record_value(n) for n in range(offset, offset + BATCH)}, offset + BATCH)
            offset += BATCH
            print(offset, flush=True)
    for _ in range(10):
        offset = commit_batch(cache, offset)
    store.flush()
    print(offset, flush=True)
    for _ in range(5):
        offset = commit_batch(cache, offset)
    os._exit(0)  # no close, no flush: the last five batches live only in the memtable


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
