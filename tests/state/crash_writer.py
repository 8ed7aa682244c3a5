"""Child process for the crash tests: commits batches through a WriteCache, then dies unclean.

Record ``i`` of the changelog is the key ``rec:<i>``; the key ``last`` holds the newest
record number, so a reopened store can check that its data and its offset agree.

    python crash_writer.py DIR kill         commit forever, print each offset; the parent kills us
    python crash_writer.py DIR exit-after-flush   flush mid-way, commit more, then os._exit
    python crash_writer.py DIR wipe         commit and flush a few SST files, wipe, forever; the parent kills us
    python crash_writer.py DIR bulk         bulk load (a restore from empty) forever; the parent kills us
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def main(directory: Path, mode: str) -> None:
    store = open_store("rocksdb", directory, "crash")
    cache = WriteCache(store)
    offset = 0
    if mode == "kill":
        while True:
            offset = commit_batch(cache, offset)
            print(offset, flush=True)
    if mode == "wipe":
        while True:
            for _ in range(8):  # a file each, so that deleting them takes a while
                offset = commit_batch(cache, offset)
                store.flush()
            print(offset, flush=True)
            store.wipe()
            offset = 0
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
