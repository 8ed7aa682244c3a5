"""How a worker's tasks commit, one class per processing guarantee.

The worker asks its commit path for each new task's producer, hands it the tasks to
commit on every commit interval (and before a task closes), and releases a task's
producer when the task closes. What a commit does, and what a failed one costs, is
the guarantee's business:

- at-least-once: one idempotent producer shared by every task; outputs and changelog
  records acknowledged first, then the input offsets committed, then local state applied.
- exactly-once v1: one transactional producer per task (see streamer.runtime.transactions);
  each task's outputs, changelog records and input offsets commit in its own transaction.

A task commits between batches, under its lock. Where tasks commit independently
(at-least-once, v1), each commits as soon as it is between batches, and one still busy
at the deadline (a slow async batch, say) waits for the next commit instead of holding
up the others.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError

from streamer.config import StreamerConfig
from streamer.runtime.clients import connection_options
from streamer.runtime.task import Offsets, StreamTask
from streamer.runtime.transactions import FENCING_ERRORS, abort_quietly, commit_transaction, start_task_producer

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

    @abstractmethod
    async def commit(self, tasks: list[StreamTask]) -> Failed:
        """Commit the tasks' work (each made progress); returns those whose commit failed and must be redone."""

    @abstractmethod
    async def release(self, task: StreamTask, failed: bool) -> None:
        """The task is closing: abort its open work if ``failed``, let go of its producer."""

    @abstractmethod
    async def close(self) -> None:
        """The worker stops: after every task was released."""


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


def _producer_options(config: StreamerConfig) -> dict[str, object]:
    """Batch and acknowledgement settings every producer of a worker shares."""
    return dict(acks="all", enable_idempotence=True, max_batch_size=config.max_batch_bytes,
                max_request_size=max(config.max_batch_bytes, 1_048_576), linger_ms=5,
                **connection_options(config))


class AtLeastOnce(CommitPath):
    """One shared idempotent producer; outputs before offsets before state."""

    def __init__(self, config: StreamerConfig) -> None:
        super().__init__(config)
        self.producer = AIOKafkaProducer(client_id=f"{config.application_id}-producer", **_producer_options(config))

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
        producer = await start_task_producer(self.config, task_id, connection_options(self.config))
        self._producers[task_id] = producer
        return producer

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
        producer = self._producers.pop(task.task_id, task.producer)
        if failed:
            await abort_quietly(producer, task.task_id)
        await producer.stop()

    async def close(self) -> None:
        """Every task released its producer already, unless the worker failed while opening one."""
        for task_id, producer in list(self._producers.items()):
            await abort_quietly(producer, task_id)
            await producer.stop()
        self._producers.clear()


def commit_path_for(config: StreamerConfig) -> CommitPath:
    """The commit path of the configured processing guarantee."""
    return ExactlyOncePerTask(config) if config.exactly_once else AtLeastOnce(config)
