"""State store throughput: restore, point reads, write cache and range scans.

    .venv/bin/python benchmarks/state_bench.py [--records N] [--kind rocksdb|memory]

Keys are 16 bytes, values 100 bytes, a typical small aggregate. Restore writes batches of
5,000 (the size of a large Kafka fetch); the write cache applies every 10,000 records (a
commit interval's worth). Every figure is single-threaded Python driving the store.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from streamer.state import KeyValueStore, StoreKind, WriteCache, open_store

RESTORE_BATCH = 5_000
COMMIT_EVERY = 10_000
VALUE = b"v" * 100


def key_of(number: int) -> bytes:
    return b"key-%012d" % number


def rate(label: str, run: Callable[[], int]) -> None:
    """Time ``run``, which returns how many operations it did."""
    began = time.perf_counter()
    count = run()
    elapsed = time.perf_counter() - began
    print(f"{label:<44} {count / elapsed:>14,.0f} /s   ({count:,} in {elapsed:.3f}s)")


def bench_restore(store: KeyValueStore, records: int) -> None:
    batches = [
        [(key_of(n), VALUE) for n in range(first, min(first + RESTORE_BATCH, records))]
        for first in range(0, records, RESTORE_BATCH)
    ]

    def restore() -> int:
        offset = 0
        for batch in batches:
            offset += len(batch)
            store.restore_batch(batch, offset)
        return offset

    rate("restore_batch puts", restore)
    store.flush()


def bench_gets(store: KeyValueStore, records: int, rng: random.Random) -> None:
    count = min(records, 300_000)
    hits = [key_of(rng.randrange(records)) for _ in range(count)]
    misses = [key_of(records + rng.randrange(records)) for _ in range(count)]
    get = store.get
    rate("store get, hit (random keys)", lambda: len([get(key) for key in hits]))
    rate("store get, miss", lambda: len([get(key) for key in misses]))


def bench_cache(store: KeyValueStore, records: int, rng: random.Random) -> None:
    count = min(records, 300_000)
    keys = [key_of(rng.randrange(records * 2)) for _ in range(count)]
    cache = WriteCache(store)
    get, put = cache.get, cache.put

    def dirty_puts() -> int:
        for key in keys:
            put(key, VALUE)
        return len(keys)

    rate("cache put", dirty_puts)
    rate("cache get, dirty hit", lambda: len([get(key) for key in keys]))
    cache.discard()
    rate("cache get, falls through to store", lambda: len([get(key) for key in keys]))

    def read_modify_write_and_commit() -> int:
        offset = store.changelog_offset() or 0
        for done, key in enumerate(keys, 1):
            value = get(key)
            put(key, VALUE if value is None else value)
            if done % COMMIT_EVERY == 0:
                cache.dirty_entries()  # what the runtime produces to the changelog
                offset += cache.dirty_count
                cache.apply(offset)
        cache.apply(offset + cache.dirty_count)
        return len(keys)

    rate(f"cache get+put, apply every {COMMIT_EVERY:,}", read_modify_write_and_commit)

    dirty = [key_of(rng.randrange(records * 2)) for _ in range(COMMIT_EVERY)]
    batches = max(count // COMMIT_EVERY, 1)

    def apply_only() -> int:
        for number in range(batches):
            for key in dirty:
                put(key, VALUE)
            cache.apply(number)
        return batches * len(dirty)

    rate(f"cache put+apply ({COMMIT_EVERY:,}-entry batches)", apply_only)


def bench_scans(store: KeyValueStore, records: int, rng: random.Random) -> None:
    rate("full range scan, keys", lambda: sum(1 for _ in store.range(None, None)))
    rate("full reverse scan, keys", lambda: sum(1 for _ in store.range(None, None, reverse=True)))
    starts = [rng.randrange(max(records - 100, 1)) for _ in range(5_000)]

    def short_scans() -> int:
        return sum(sum(1 for _ in store.range(key_of(first), key_of(first + 100))) for first in starts)

    rate("100-key range scans, keys", short_scans)
    cache = WriteCache(store)
    for _ in range(COMMIT_EVERY):
        cache.put(key_of(rng.randrange(records)), VALUE)
    rate(f"full scan through cache ({COMMIT_EVERY:,} dirty), keys", lambda: sum(1 for _ in cache.range(None, None)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--kind", choices=["rocksdb", "memory"], default="rocksdb")
    args = parser.parse_args()
    kind: StoreKind = args.kind
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="streamer-state-bench-") as directory:
        store = open_store(kind, Path(directory), "bench")
        print(f"{kind} store, {args.records:,} records of 16 + 100 bytes")
        bench_restore(store, args.records)
        bench_gets(store, args.records, rng)
        bench_cache(store, args.records, rng)
        bench_scans(store, args.records, rng)
        store.close()


if __name__ == "__main__":
    main()
