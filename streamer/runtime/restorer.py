"""Restores stores from their changelogs: one consumer, one loop, all restoring partitions at once.

Tasks register their changelog partitions and wait; the loop reads large fetches of
every registered partition (``ChangelogReader``: its own FetchRequests, keys and values
without a ConsumerRecord each) and releases a task once all its partitions reached the
end offsets taken at registration. A task closed mid-restore simply deregisters. Errors and
stalls fail every waiting task loudly instead of leaving it hanging.

Two ways to write: a store that already has data (it has a changelog offset of its own)
gets each fetch as one write batch, records in offset order. A store restored from
nothing (no offset: a lost disk, a new worker) is bulk loaded: its records collect in a
``RestoreBuffer`` (latest value per key) until it holds ``SST_TARGET_BYTES`` or its
partition is done, and then go to the store at once (RocksDB: one sorted SST file,
ingested; see ``streamer.state.sst_restore`` for why that keeps exactly-once). All
buffers together stay under ``RESTORE_BUFFER_BYTES``: past it the largest is written.
A bulk load that is interrupted leaves the offset of its last written buffer, so the
next restore resumes from there with write batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamer.errors import StateStoreError
from streamer.runtime.changelog_fetch import ChangelogReader
from streamer.runtime.log_ends import high_watermarks
from streamer.state.sst_restore import SST_TARGET_BYTES, RestoreBuffer
from streamer.state.store import Entry

log = logging.getLogger("streamer.restore")

#: Give up on a restore that made no progress for this long.
RESTORE_STALL_TIMEOUT_S = 120.0
PROGRESS_EVERY_S = 5.0
#: Most bytes of keys and values the buffers of all stores restored from empty hold at once.
RESTORE_BUFFER_BYTES = 2 * SST_TARGET_BYTES


class Restorable(Protocol):
    """What a restore writes to: a task's store, or one partition of a global store."""

    def changelog_offset(self) -> int | None: ...

    def restore_batch(self, entries: Iterable[Entry], next_offset: int) -> None: ...

    def wipe(self) -> None: ...


@runtime_checkable
class BulkLoadable(Protocol):
    """A store that takes a restore's records all at once when it starts empty (``KeyValueStore``)."""

    def bulk_load(self, entries: Mapping[bytes, bytes | None], next_offset: int) -> None: ...


class RestoreTarget(Protocol):
    """A task store's write cache (restores bypass it), or a global store's partition."""

    @property
    def store(self) -> Restorable: ...


@dataclass
class _Waiter:
    partitions: set[TopicPartition]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _estimated_bytes(entries: list[Entry]) -> int:
    """Keys and values of a fetch, from its first and last record: a memory bound without a pass per record."""
    (first_key, first_value), (last_key, last_value) = entries[0], entries[-1]
    sizes = len(first_key or b"") + len(first_value or b"") + len(last_key or b"") + len(last_value or b"")
    return len(entries) * max(sizes, 2) // 2


class Restorer:
    """Owns the restore consumer; ``restore`` returns once the given stores are caught up."""

    def __init__(self, consumer: AIOKafkaConsumer, on_restored: Callable[[str, int], None] | None = None,
                 on_restore_begin: Callable[[str, int, int], None] | None = None, log_progress: bool = True) -> None:
        self.consumer = consumer
        self._reader = ChangelogReader(consumer)
        #: told (changelog topic, records) after each fetch written to a store: the worker's metrics
        self.on_restored = on_restored
        #: told (changelog topic, partition, records to restore) once a partition's end offset is known
        self.on_restore_begin = on_restore_begin
        #: log progress every PROGRESS_EVERY_S; off when the worker draws a progress bar instead
        self.log_progress = log_progress
        self._targets: dict[TopicPartition, tuple[RestoreTarget, int]] = {}
        self._starts: dict[TopicPartition, int] = {}
        #: Partitions whose stores started empty: their records since the last bulk load.
        self._buffers: dict[TopicPartition, RestoreBuffer] = {}
        #: Partitions the reader reads.
        self._reading: set[TopicPartition] = set()
        self._waiters: list[_Waiter] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._restored = 0
        #: ends the reading loop even if a cancel was swallowed (asyncio.wait_for in aiokafka, Python 3.11)
        self._closed = False

    async def restore(self, targets: Mapping[TopicPartition, RestoreTarget]) -> None:
        """Bring each store up to the end of its changelog partition."""
        if not targets:
            return
        ends = await high_watermarks(self.consumer, targets)  # not the last stable offsets: see log_ends
        remaining: set[TopicPartition] = set()
        for tp, cache in targets.items():
            offset = cache.store.changelog_offset()
            start = offset or 0
            if start > ends[tp]:
                log.warning("store for %s is ahead of its changelog (%d > %d); rebuilding it", tp, start, ends[tp])
                cache.store.wipe()
                offset, start = None, 0
            if start < ends[tp]:
                self._targets[tp] = (cache, ends[tp])
                self._starts[tp] = start
                if offset is None and isinstance(cache.store, BulkLoadable):
                    self._buffers[tp] = RestoreBuffer()
                remaining.add(tp)
                if self.on_restore_begin is not None:
                    self.on_restore_begin(tp.topic, tp.partition, ends[tp] - start)
        if not remaining:
            return
        waiter = _Waiter(set(remaining))
        self._waiters.append(waiter)
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="restore")
        try:
            await waiter.done
        finally:
            self.forget(remaining)

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Stop restoring these partitions (their task closed)."""
        for tp in partitions:
            self._targets.pop(tp, None)
            self._starts.pop(tp, None)
            self._buffers.pop(tp, None)  # unwritten: the store's offset is that of its last bulk load
            self._reading.discard(tp)
            self._reader.remove(tp)
        self._waiters = [w for w in self._waiters if not (w.partitions & partitions) or w.done.done()]

    async def close(self) -> None:
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            await self._read()
        except Exception as error:  # every waiting task must hear of it
            for waiter in self._waiters:
                if not waiter.done.done():
                    waiter.done.set_exception(StateStoreError(f"restoring state failed: {error!r}"))
            raise

    async def _read(self) -> None:
        began = last_progress = last_report = time.monotonic()
        total_at_start = self._restored
        reader = self._reader
        while self._targets and not self._closed:
            for tp, (_, end) in self._targets.items():
                if tp not in self._reading:  # registered since the last fetch
                    reader.add(tp, self._starts[tp], end)
                    self._reading.add(tp)
            for fetched in await reader.fetch():
                tp, entries = fetched.tp, fetched.entries
                target = self._targets.get(tp)
                if target is None:
                    continue
                last_progress = time.monotonic()
                if fetched.restarted:
                    self._start_over(tp, fetched.next_offset)
                    continue
                if not entries:  # only control batches, aborted transactions or compacted gaps
                    continue
                buffer = self._buffers.get(tp)
                if buffer is None:
                    target[0].store.restore_batch(entries, fetched.next_offset)
                    self._written(tp, len(entries))
                else:
                    buffer.add(entries, len(entries), _estimated_bytes(entries), fetched.next_offset)
                    if buffer.bytes >= SST_TARGET_BYTES:
                        self._bulk_load(tp)
            self._bound_buffers()
            for tp in [tp for tp in self._reading if reader.done(tp)]:
                if tp in self._buffers:
                    self._bulk_load(tp)
                    del self._buffers[tp]
                self._finish(tp, reader.position(tp))
                self._release(tp)
            now = time.monotonic()
            if self.log_progress and now - last_report >= PROGRESS_EVERY_S and self._targets:
                last_report = now
                done = self._restored - total_at_start
                log.info("restoring: %d records so far (%.0f records/s), %d partitions to go",
                         done, done / (now - began), len(self._targets))
            if now - last_progress > RESTORE_STALL_TIMEOUT_S:
                raise StateStoreError(
                    f"restore made no progress for {RESTORE_STALL_TIMEOUT_S:.0f}s on "
                    f"{sorted(map(str, self._targets))}; check the broker and the changelog topics"
                )
        elapsed = max(time.monotonic() - began, 1e-9)
        done = self._restored - total_at_start
        log.info("restored %d records in %.2fs (%.0f records/s)", done, elapsed, done / elapsed)

    def _written(self, tp: TopicPartition, records: int) -> None:
        self._restored += records
        if self.on_restored is not None:
            self.on_restored(tp.topic, records)

    def _finish(self, tp: TopicPartition, position: int) -> None:
        """Record the end reached: a restore that ends in markers or aborted records has written none of them."""
        store = self._targets.pop(tp)[0].store
        self._starts.pop(tp, None)
        self._reading.discard(tp)
        self._reader.remove(tp)
        if store.changelog_offset() != position:
            store.restore_batch((), position)

    def _start_over(self, tp: TopicPartition, start: int) -> None:
        """Rebuild the store from the log start, which moved past its position (retention, deleted records).

        Continuing from there would keep what the lost records changed: a key they deleted
        would live on. So the store is emptied and restored from what the log still holds,
        as Kafka Streams does with a task whose changelog offsets are out of range.
        """
        store, end = self._targets[tp][0].store, self._targets[tp][1]
        log.warning("restore of %s: the changelog starts at %d now, past the store's position; the records "
                    "between are gone, so the store is wiped and restored from %d", tp, start, start)
        store.wipe()
        self._starts[tp] = start
        if isinstance(store, BulkLoadable):
            self._buffers[tp] = RestoreBuffer()
        else:
            self._buffers.pop(tp, None)
        if self.on_restore_begin is not None:
            self.on_restore_begin(tp.topic, tp.partition, max(0, end - start))

    def _bulk_load(self, tp: TopicPartition) -> None:
        """Write a partition's buffered records to its store, with the offset they reach."""
        buffer = self._buffers[tp]
        if buffer.next_offset is None or not buffer.records:
            return
        store = self._targets[tp][0].store
        assert isinstance(store, BulkLoadable)
        store.bulk_load(buffer.entries, buffer.next_offset)
        self._written(tp, buffer.records)
        buffer.clear()

    def _bound_buffers(self) -> None:
        """Write the largest buffers until all of them together are under ``RESTORE_BUFFER_BYTES``."""
        while self._buffers and sum(b.bytes for b in self._buffers.values()) > RESTORE_BUFFER_BYTES:
            self._bulk_load(max(self._buffers, key=lambda tp: self._buffers[tp].bytes))

    def _release(self, finished: TopicPartition) -> None:
        for waiter in self._waiters:
            waiter.partitions.discard(finished)
            if not waiter.partitions and not waiter.done.done():
                waiter.done.set_result(None)
