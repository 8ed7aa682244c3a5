"""How a worker's tasks commit, one class per processing guarantee.

The worker asks its commit path for each new task's producer, hands it the tasks to
commit on every commit interval (and before a task closes), and releases a task's
producer when the task closes. What a commit does, and what a failed one costs, is
the guarantee's business:

- at-least-once: one idempotent producer shared by every task; outputs and changelog
  records acknowledged first, then the input offsets committed, then local state applied.
- exactly-once v1: one transactional producer per task (see streamer.runtime.transactions);
  each task's outputs, changelog records and input offsets commit in its own transaction.
- exactly-once v2 (KIP-447): one transactional producer per worker; every task's outputs,
  changelog records and input offsets commit in one transaction per commit interval,
  the offsets fenced by the consumer group's generation (streamer.runtime.txn_offsets).

A task commits between batches, under its lock. Where tasks commit independently
(at-least-once, v1), each commits as soon as it is between batches, and one still busy
at the deadline (a slow async batch, say) waits for the next commit instead of holding
up the others. Under v2 the transaction holds every task's output, so it commits only
once every task is between batches at the same time.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalOperation, KafkaError, ProducerFenced

from streamer.config import StreamerConfig
from streamer.errors import GroupFencedError, ProduceError
from streamer.runtime.task import Offsets, StreamTask
from streamer.runtime.transactions import (
    ABORT_TIMEOUT_S,
    FENCING_ERRORS,
    abort_quietly,
    commit_transaction,
    producer_options,
    start_task_producer,
)
from streamer.runtime.txn_offsets import (
    GroupMetadata,
    check_broker_supports,
    fetch_stable_offsets,
    send_offsets_to_transaction,
)

log = logging.getLogger("streamer.guarantees")

#: A task whose commit failed, with what it failed of.
Failed = list[tuple[StreamTask, BaseException]]


class CommitPath(ABC):
    """What the worker calls to produce and commit under one processing guarantee."""

    #: Errors after which a task's producer is unusable because a newer owner took over.
    fencing_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, config: StreamerConfig) -> None:
        self.config = config
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self, consumer: AIOKafkaConsumer) -> None:
        """Before the consumer joins its group (which opens the first tasks)."""
        self.consumer = consumer

    @abstractmethod
    async def producer_for(self, task_id: str) -> AIOKafkaProducer:
        """The producer a new task writes through."""

    async def reclaim(self, task: StreamTask) -> bool:
        """A task suspended here is assigned here again: False if another worker may have taken it meanwhile.

        Called before the worker compares the committed offsets with the task's own (which
        catches another worker's commits); a task either check rejects is reopened, with a
        restore, instead of resumed. Under at-least-once and v2 the offsets tell it all.
        """
        return True

    @abstractmethod
    async def commit(self, tasks: list[StreamTask]) -> Failed:
        """Commit the tasks' work (each made progress); returns those whose commit failed and must be redone."""

    @abstractmethod
    async def release(self, task: StreamTask, failed: bool) -> None:
        """The task is closing: abort its open work if ``failed``, let go of its producer."""

    @abstractmethod
    async def close(self) -> None:
        """The worker stops: after every task was released."""

    async def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, tuple[int, str | None]]:
        """The group's committed (offset, metadata) of ``partitions``, offset -1 where none is.

        Through the consumer's group coordinator: ``consumer.committed()`` would give the
        offset without the metadata, and it retries while the coordinator loads.
        """
        assert self.consumer is not None
        found = await self.consumer._coordinator.fetch_committed_offsets(partitions)
        return {tp: (found[tp].offset, found[tp].metadata) if tp in found else (-1, None) for tp in partitions}


async def commit_as_free(tasks: list[StreamTask], timeout: float,
                         commit: Callable[[list[StreamTask]], Awaitable[None]]) -> list[StreamTask]:
    """Call ``commit`` with each group of tasks holding their locks, as their batches end, until ``timeout``.

    Tasks between batches when asked commit together; each busy one once its batch ends.
    A task that halted meanwhile (closed, or its commit failed) is left out. Returns the tasks
    still busy at the deadline, left uncommitted.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    waiting = {asyncio.ensure_future(task.lock.acquire()): task for task in tasks}
    try:
        while waiting:
            done, _ = await asyncio.wait(waiting, timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break
            ready = [waiting.pop(acquired) for acquired in done]
            try:
                if any(not task.halted for task in ready):
                    await commit([task for task in ready if not task.halted])
            finally:
                for task in ready:
                    task.lock.release()
    finally:
        for acquiring in waiting:
            acquiring.cancel()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        for task, outcome in zip(waiting.values(), outcomes):
            if outcome is True:  # acquired just before it was cancelled
                task.lock.release()
    return list(waiting.values())


class AtLeastOnce(CommitPath):
    """One shared idempotent producer; outputs before offsets before state."""

    def __init__(self, config: StreamerConfig) -> None:
        super().__init__(config)
        self.producer = AIOKafkaProducer(client_id=f"{config.application_id}-producer",
                                         **producer_options(config))

    async def start(self, consumer: AIOKafkaConsumer) -> None:
        await super().start(consumer)
        await self.producer.start()

    async def producer_for(self, task_id: str) -> AIOKafkaProducer:
        return self.producer

    async def commit(self, tasks: list[StreamTask]) -> Failed:
        busy = await commit_as_free(tasks, self.config.effective_commit_interval_ms / 1000, self._commit_locked)
        if busy:
            log.debug("tasks %s were busy until the commit deadline; they commit next time",
                      ", ".join(t.task_id for t in busy))
        return []

    async def _commit_locked(self, tasks: list[StreamTask]) -> None:
        """Outputs and changelogs acknowledged first, then input offsets, then local state."""
        assert self.consumer is not None
        flushed = await asyncio.gather(*(task.flush() for task in tasks))
        offsets: Offsets = {tp: offset for result in flushed for tp, offset in result.items()}
        try:
            await self.consumer.commit(offsets)
        except CommitFailedError as error:
            # The changelogs already hold these changes, so the stores take them too; only the
            # input offsets stay uncommitted, and the records behind them are processed again.
            log.warning("offset commit failed after a rebalance; those records will be processed again: %r", error)
            for task in tasks:
                task.stores.apply()
            return
        for task, result in zip(tasks, flushed):
            task.committed(result)

    async def release(self, task: StreamTask, failed: bool) -> None:
        """The shared producer stays; the task's unsent output was dropped with its work."""

    async def close(self) -> None:
        await self.producer.stop()


class ExactlyOncePerTask(CommitPath):
    """Exactly-once v1: a transactional producer per task, fenced by its transactional id."""

    fencing_errors = FENCING_ERRORS

    def __init__(self, config: StreamerConfig) -> None:
        super().__init__(config)
        self._producers: dict[str, AIOKafkaProducer] = {}

    async def producer_for(self, task_id: str) -> AIOKafkaProducer:
        producer = await start_task_producer(self.config, task_id)
        self._producers[task_id] = producer
        return producer

    async def reclaim(self, task: StreamTask) -> bool:
        """Initialize the task's transactional id again, with a new producer, before it resumes.

        Another worker that opened the task while it was suspended here fenced its producer,
        whether or not it committed anything: resumed with that producer, the task would fail
        its first send as fenced and stall. The new producer's InitProducerId fences every
        other copy, aborts their open transactions and waits for a commit of theirs to
        complete, so the committed offsets read next are final. InitProducerId raises the
        epoch by one per call: one more than the old producer's means nobody took the id since.
        """
        old = task.producer
        new = await start_task_producer(self.config, task.task_id)
        before, after = old._txn_manager, new._txn_manager
        if (after.producer_id, after.producer_epoch) != (before.producer_id, before.producer_epoch + 1):
            await new.stop()  # the task is reopened, with a producer of its own
            return False
        await old.stop()  # its transaction is empty: the task committed before it was suspended
        task.use_producer(new)
        self._producers[task.task_id] = new
        return True

    async def commit(self, tasks: list[StreamTask]) -> Failed:
        failed: Failed = []

        async def commit_each(ready: list[StreamTask]) -> None:
            outcomes = await asyncio.gather(*(self._commit_task(t) for t in ready), return_exceptions=True)
            failed.extend((t, o) for t, o in zip(ready, outcomes) if isinstance(o, BaseException))

        await commit_as_free(tasks, self.config.effective_commit_interval_ms / 1000, commit_each)
        return failed

    async def _commit_task(self, task: StreamTask) -> None:
        """Outputs, changelog records and input offsets in one transaction; state after it commits.

        Called under the task's lock. A failed task halts before its lock is released, so it
        writes nothing more to the transaction its worker is about to abort.
        """
        try:
            offsets = await task.flush()
            await commit_transaction(task.producer, offsets, self.config.application_id)
        except BaseException:
            task.halt()
            raise
        task.committed(offsets)

    async def release(self, task: StreamTask, failed: bool) -> None:
        producer = task.producer
        if self._producers.get(task.task_id) is producer:  # not a newer copy's (reopened meanwhile)
            del self._producers[task.task_id]
        if failed:
            await abort_quietly(producer, task.task_id)
        await producer.stop()

    async def close(self) -> None:
        """Every task released its producer already, unless the worker failed while opening one."""
        for task_id, producer in list(self._producers.items()):
            await abort_quietly(producer, task_id)
            await producer.stop()
        self._producers.clear()


#: Kafka Streams' transaction.timeout.ms under exactly-once: how long a crashed worker's open
#: transaction holds back read_committed readers of its outputs before the broker aborts it.
TRANSACTION_TIMEOUT_MS = 10_000


class _CurrentProducer:
    """What v2's tasks hold as their producer: always the worker's current one, also after it was replaced."""

    def __init__(self, path: ExactlyOnceV2) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._path.producer, name)


class ExactlyOnceV2(CommitPath):
    """Exactly-once v2: one transactional producer per worker, offsets fenced by the group generation.

    ``open_tasks`` gives the worker's running tasks: each commit takes all of their locks,
    since each may have written into the transaction. A failed commit is aborted with every
    task halted first, and every task is reported failed (their uncommitted state goes).
    """

    #: Only the group's word fences under v2: a ProducerFenced (the broker aborted a transaction that
    #: ran past its timeout) is recovered from with a new producer, and the tasks reopen.
    fencing_errors = (GroupFencedError,)

    def __init__(self, config: StreamerConfig, process_id: str, open_tasks: Callable[[], list[StreamTask]]) -> None:
        super().__init__(config)
        #: stable across restarts: a restarted worker's InitProducerId aborts what its last run left open
        self.transactional_id = f"{config.application_id}-{process_id}"
        self.open_tasks = open_tasks
        self.producer: AIOKafkaProducer | None = None
        self._handle = cast(AIOKafkaProducer, _CurrentProducer(self))
        self._lock = asyncio.Lock()
        interval = config.effective_commit_interval_ms
        self.transaction_timeout_ms = max(TRANSACTION_TIMEOUT_MS, 3 * interval)
        #: how long a commit waits for every task to be between batches before it tries again next interval
        self.lock_timeout_s = max(interval, self.transaction_timeout_ms // 4) / 1000

    async def start(self, consumer: AIOKafkaConsumer) -> None:
        await super().start(consumer)
        self.producer = await self._new_producer()
        await check_broker_supports(self.producer)

    async def _new_producer(self) -> AIOKafkaProducer:
        """A started producer of the worker's transactional id (which fences any older one) in a transaction."""
        producer = AIOKafkaProducer(client_id=f"{self.config.application_id}-producer",
                                    transactional_id=self.transactional_id,
                                    transaction_timeout_ms=self.transaction_timeout_ms,
                                    **producer_options(self.config))
        await producer.start()
        await producer.begin_transaction()
        return producer

    async def producer_for(self, task_id: str) -> AIOKafkaProducer:
        return self._handle

    async def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, tuple[int, str | None]]:
        """Wait for a last owner's commit still landing (KIP-447's stable offsets), then read."""
        assert self.consumer is not None
        found = await fetch_stable_offsets(self.consumer, partitions)
        return {tp: found.get(tp, (-1, None)) for tp in partitions}

    async def commit(self, tasks: list[StreamTask]) -> Failed:
        async with self._lock:
            members = await self._lock_all()
            if members is None:
                log.debug("a task stayed busy for %.1fs; the transaction commits next time", self.lock_timeout_s)
                return []
            try:  # a task that closed while the commit waited for it is out
                return await self._commit_locked([t for t in members if not t.halted])
            finally:
                for task in members:
                    task.lock.release()

    async def _lock_all(self) -> list[StreamTask] | None:
        """Every running task's lock (also tasks that start meanwhile), or none if one stays busy too long."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lock_timeout_s
        held: list[StreamTask] = []
        while True:
            more = [t for t in self.open_tasks() if not t.halted and t not in held]
            if not more:
                return held
            acquiring = [asyncio.ensure_future(t.lock.acquire()) for t in more]
            done, pending = await asyncio.wait(acquiring, timeout=max(0.0, deadline - loop.time()))
            if pending:
                for future in pending:
                    future.cancel()
                outcomes = await asyncio.gather(*acquiring, return_exceptions=True)
                for task, outcome in zip(more, outcomes):
                    if outcome is True:
                        held.append(task)
                for task in held:
                    task.lock.release()
                return None
            held.extend(more)

    async def _commit_locked(self, members: list[StreamTask]) -> Failed:
        assert self.consumer is not None and self.producer is not None
        progressed = [t for t in members if t.needs_commit]
        try:
            flushed = await asyncio.gather(*(t.flush() for t in members))
            offsets: Offsets = {tp: offset for task, result in zip(members, flushed) if task in progressed
                                for tp, offset in result.items()}
            async with asyncio.timeout(self.transaction_timeout_ms / 1000):
                if offsets:
                    await send_offsets_to_transaction(self.producer, offsets, GroupMetadata.of(self.consumer))
                await self.producer.commit_transaction()
        except (KafkaError, IllegalOperation, GroupFencedError, ProduceError, TimeoutError) as error:
            # ProduceError: a batch of the transaction failed (refused, or its producer fenced by a timed-out
            # transaction): aborted and redone like any failed commit, as under v1.
            for task in members:
                task.halt()
            await self._abort(error)
            return [(task, error) for task in members]
        for task, result in zip(members, flushed):
            task.committed(result)
        await self.producer.begin_transaction()
        return []

    async def _abort(self, error: BaseException) -> None:
        """Abort the failed transaction and open the next; a producer that cannot is replaced.

        So is one with a batch the broker refused: aiokafka keeps that batch's sequence numbers,
        and every later batch of the partition would fail as out of order.
        """
        assert self.producer is not None
        log.warning("transaction of %s failed (%r); aborting it", self.transactional_id, error)
        manager: Any = self.producer._txn_manager
        if not isinstance(error, (ProducerFenced, ProduceError)) and not manager.is_fatal_error():
            try:
                await asyncio.wait_for(self.producer.abort_transaction(), ABORT_TIMEOUT_S)
                await self.producer.begin_transaction()
                return
            except (KafkaError, IllegalOperation, TimeoutError, AssertionError) as failure:
                log.warning("abort failed (%r); starting a new producer, which aborts it", failure)
        old, self.producer = self.producer, None
        try:
            await old.stop()
        except KafkaError as failure:
            log.info("stopping the old producer failed: %r", failure)
        self.producer = await self._new_producer()

    async def release(self, task: StreamTask, failed: bool) -> None:
        """The worker's producer stays; a failed task's work was aborted with the transaction."""

    async def close(self) -> None:
        if self.producer is not None:
            await abort_quietly(self.producer, self.transactional_id)
            await self.producer.stop()


def commit_path_for(config: StreamerConfig, process_id: str,
                    open_tasks: Callable[[], list[StreamTask]]) -> CommitPath:
    """The commit path of the configured processing guarantee (``process_id``, ``open_tasks``: for v2)."""
    if config.processing_guarantee == "exactly_once_v2":
        return ExactlyOnceV2(config, process_id, open_tasks)
    return ExactlyOncePerTask(config) if config.exactly_once else AtLeastOnce(config)
