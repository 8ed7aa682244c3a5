"""Standby tasks: warm copies of other workers' task state, kept by reading their changelogs.

A standby task has the stores of an active task elsewhere, opened in this worker's state
directory, and nothing else: no processors, no input. One consumer (outside the group,
``read_committed`` under exactly-once) follows the changelog partitions of every standby
and writes each fetch to its store as one restore batch, which moves the store's
changelog offset with it. When the assignment makes a standby active here, the worker
takes its open stores over (``take``) and restores only the tail the standby had not
read yet. Warm-ups (KIP-441) are standbys too; the assignor moves their task once they
caught up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streamer.config import StreamerConfig
from streamer.errors import StateStoreError
from streamer.runtime.clients import connection_options
from streamer.runtime.local_tasks import offset_sum, write_checkpoint
from streamer.runtime.task_assignment import TaskId
from streamer.runtime.task_core import task_id_of
from streamer.runtime.task_stores import TaskStores
from streamer.topology.topology import SubTopology

log = logging.getLogger("streamer.standby")

#: Most changelog records one fetch of the standby consumer hands over.
FETCH_RECORDS = 50_000


class StandbyTasks:
    """The worker's standby tasks and the loop that keeps their stores up to date."""

    def __init__(self, config: StreamerConfig, subtopologies: Mapping[int, SubTopology],
                 open_stores: Callable[[SubTopology, int], TaskStores], root: Path,
                 on_error: Callable[[BaseException], None]) -> None:
        self.config = config
        self.subtopologies = subtopologies
        self.open_stores = open_stores
        self.root = root
        self.on_error = on_error
        #: task -> its open stores
        self.tasks: dict[TaskId, TaskStores] = {}
        #: records written to standby stores since the worker started
        self.records = 0
        self._targets: dict[TopicPartition, tuple[TaskStores, str]] = {}
        self._changed = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._loop_task: asyncio.Task[None] | None = None

    def update(self, wanted: Iterable[TaskId]) -> None:
        """Keep exactly ``wanted`` as standbys: close the others (checkpointed), open the new ones."""
        chosen = {task for task in wanted if self.subtopologies[task[0]].stores}
        for task in sorted(set(self.tasks) - chosen):
            self._close(task)
        for task in sorted(chosen - set(self.tasks)):
            self.tasks[task] = self.open_stores(self.subtopologies[task[0]], task[1])
        if self.tasks and (self._loop_task is None or self._loop_task.done()):
            self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="standby")
        self._retarget()

    def take(self, task: TaskId) -> TaskStores | None:
        """Hand a standby's open stores to the active task that replaces it (None: no standby of it here)."""
        stores = self.tasks.pop(task, None)
        if stores is not None:
            self._retarget()
        return stores

    def offsets(self) -> dict[TaskId, int]:
        """Offset sums of the standby stores, for the subscription."""
        return {task: offset_sum(stores) for task, stores in self.tasks.items()}

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        for task in sorted(self.tasks):
            self._close(task)
        if self._consumer is not None:
            try:
                await self._consumer.stop()
            except KafkaError as error:
                log.warning("closing the standby consumer failed: %r", error)
            self._consumer = None

    def _close(self, task: TaskId) -> None:
        stores = self.tasks.pop(task)
        if self.config.state_store == "rocksdb":
            write_checkpoint(self.root / task_id_of(*task), stores)
        stores.close()

    def _retarget(self) -> None:
        self._targets = {TopicPartition(topic, stores.partition): (stores, name)
                         for stores in self.tasks.values() for name, topic in stores.changelogs.items()}
        self._changed.set()

    async def _run(self) -> None:
        try:
            await self._follow()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a standby that silently stops would make failovers slow
            log.exception("standby tasks failed")
            self.on_error(StateStoreError(f"updating standby tasks failed: {error!r}"))

    async def _follow(self) -> None:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                client_id=f"{self.config.application_id}-standby",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed" if self.config.exactly_once else "read_uncommitted",
                **connection_options(self.config),
            )
            await consumer.start()
            self._consumer = consumer
        consumer = self._consumer
        while True:
            if self._changed.is_set():
                self._changed.clear()
                targets = dict(self._targets)
                consumer.assign(list(targets))
                for tp, (stores, name) in targets.items():  # from where each store is
                    consumer.seek(tp, stores[name].store.changelog_offset() or 0)
            if not self._targets:
                await self._changed.wait()
                continue
            batches = await consumer.getmany(timeout_ms=200, max_records=FETCH_RECORDS)
            for tp, messages in batches.items():
                target = self._targets.get(tp)  # a standby closed or taken over meanwhile is skipped
                if target is not None and messages:
                    stores, name = target
                    stores[name].store.restore_batch([(m.key, m.value) for m in messages], messages[-1].offset + 1)
                    self.records += len(messages)
