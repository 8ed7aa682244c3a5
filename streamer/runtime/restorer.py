"""Restores stores from their changelogs: one consumer, one loop, all restoring partitions at once.

Tasks register their changelog partitions and wait; the loop reads large fetches of
every registered partition, writes each fetch to its store as one batch, and releases
a task once all its partitions reached the end offsets taken at registration. A task
closed mid-restore simply deregisters. Errors and stalls fail every waiting task
loudly instead of leaving it hanging.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamer.errors import StateStoreError
from streamer.state.store import Entry

log = logging.getLogger("streamer.restore")

#: Give up on a restore that made no progress for this long.
RESTORE_STALL_TIMEOUT_S = 120.0
PROGRESS_EVERY_S = 5.0
FETCH_RECORDS = 100_000


class Restorable(Protocol):
    """What a restore writes to: a task's store, or one partition of a global store."""

    def changelog_offset(self) -> int | None: ...

    def restore_batch(self, entries: Iterable[Entry], next_offset: int) -> None: ...

    def wipe(self) -> None: ...


class RestoreTarget(Protocol):
    """A task store's write cache (restores bypass it), or a global store's partition."""

    @property
    def store(self) -> Restorable: ...


@dataclass
class _Waiter:
    partitions: set[TopicPartition]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Restorer:
    """Owns the restore consumer; ``restore`` returns once the given stores are caught up."""

    def __init__(self, consumer: AIOKafkaConsumer, on_restored: Callable[[str, int], None] | None = None,
                 on_restore_begin: Callable[[str, int, int], None] | None = None, log_progress: bool = True) -> None:
        self.consumer = consumer
        #: told (changelog topic, records) after each fetch written to a store: the worker's metrics
        self.on_restored = on_restored
        #: told (changelog topic, partition, records to restore) once a partition's end offset is known
        self.on_restore_begin = on_restore_begin
        #: log progress every PROGRESS_EVERY_S; off when the worker draws a progress bar instead
        self.log_progress = log_progress
        self._targets: dict[TopicPartition, tuple[RestoreTarget, int]] = {}
        self._starts: dict[TopicPartition, int] = {}
        self._waiters: list[_Waiter] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._restored = 0

    async def restore(self, targets: Mapping[TopicPartition, RestoreTarget]) -> None:
        """Bring each store up to the end of its changelog partition."""
        if not targets:
            return
        ends = await self.consumer.end_offsets(list(targets))
        remaining: set[TopicPartition] = set()
        for tp, cache in targets.items():
            start = cache.store.changelog_offset() or 0
            if start > ends[tp]:
                log.warning("store for %s is ahead of its changelog (%d > %d); rebuilding it", tp, start, ends[tp])
                cache.store.wipe()
                start = 0
            if start < ends[tp]:
                self._targets[tp] = (cache, ends[tp])
                self._starts[tp] = start
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
        self._waiters = [w for w in self._waiters if not (w.partitions & partitions) or w.done.done()]

    async def close(self) -> None:
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

    async def _assign(self) -> None:
        """Follow registrations: keep positions of partitions already being read, seek new ones."""
        positions = {tp: await self.consumer.position(tp) for tp in self.consumer.assignment() if tp in self._targets}
        self.consumer.assign(list(self._targets))
        for tp in self._targets:
            self.consumer.seek(tp, positions.get(tp, self._starts.get(tp, 0)))

    async def _read(self) -> None:
        began = last_progress = last_report = time.monotonic()
        total_at_start = self._restored
        while self._targets:
            if set(self.consumer.assignment()) != set(self._targets):
                await self._assign()
            batches = await self.consumer.getmany(timeout_ms=200, max_records=FETCH_RECORDS)
            for tp, messages in batches.items():
                target = self._targets.get(tp)
                if target is not None and messages:
                    target[0].store.restore_batch([(m.key, m.value) for m in messages], messages[-1].offset + 1)
                    self._restored += len(messages)
                    if self.on_restored is not None:
                        self.on_restored(tp.topic, len(messages))
                    last_progress = time.monotonic()
            assigned = self.consumer.assignment()
            for tp, (_, end) in list(self._targets.items()):
                # a partition registered during the fetch is assigned on the next round
                if tp in assigned and await self.consumer.position(tp) >= end:
                    del self._targets[tp]
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
        self.consumer.unsubscribe()

    def _release(self, finished: TopicPartition) -> None:
        for waiter in self._waiters:
            waiter.partitions.discard(finished)
            if not waiter.partitions and not waiter.done.done():
                waiter.done.set_result(None)
