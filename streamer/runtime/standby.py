"""Standby tasks: warm copies of other workers' task state, kept by reading their changelogs.

A standby task has the stores of an active task elsewhere, opened in this worker's state
directory, and nothing else: no processors, no input. One consumer (outside the group,
``read_committed`` under exactly-once) follows the changelog partitions of every standby
and writes each fetch to its store as one restore batch, which moves the store's
changelog offset with it. When the assignment makes a standby active here, the worker
takes its open stores over (``take``) and restores only the tail the standby had not
read yet. Warm-ups (KIP-441) are standbys too; the assignor moves their task once they
caught up.

As in Kafka Streams, a standby's reads are updates, not restores: they feed neither the
restore metrics nor the restore progress, but ``streamer_standby_records_total`` and
``streamer_standby_lag_records`` per task and store, so an operator sees how warm each copy is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError

from streamer.config import StreamerConfig
from streamer.errors import StateStoreError
from streamer.runtime.clients import changelog_consumer
from streamer.runtime.local_tasks import offset_sum, write_checkpoint
from streamer.runtime.metrics import WorkerMetrics
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
                 on_error: Callable[[BaseException], None], metrics: WorkerMetrics) -> None:
        self.config = config
        self.subtopologies = subtopologies
        self.open_stores = open_stores
        self.root = root
        self.on_error = on_error
        self.metrics = metrics
        #: task -> its open stores
        self.tasks: dict[TaskId, TaskStores] = {}
        #: changelog partition -> (task id, its stores, the store's name)
        self._targets: dict[TopicPartition, tuple[str, TaskStores, str]] = {}
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
            self.metrics.forget_standby(task_id_of(*task), stores.changelogs)
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
        self.metrics.forget_standby(task_id_of(*task), stores.changelogs)
        if self.config.state_store == "rocksdb":
            write_checkpoint(self.root / task_id_of(*task), stores)
        stores.close()

    def _retarget(self) -> None:
        self._targets = {TopicPartition(topic, stores.partition): (task_id_of(*task), stores, name)
                         for task, stores in self.tasks.items() for name, topic in stores.changelogs.items()}
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
            consumer = changelog_consumer(self.config, "standby", read_ahead=False, auto_offset_reset="none")
            await consumer.start()
            self._consumer = consumer
        consumer = self._consumer
        while True:
            if self._changed.is_set():
                self._changed.clear()
                targets = dict(self._targets)
                consumer.assign(list(targets))
                for tp, (_, stores, name) in targets.items():  # from where each store is
                    consumer.seek(tp, stores[name].store.changelog_offset() or 0)
            if not self._targets:
                await self._changed.wait()
                continue
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=FETCH_RECORDS)
            except OffsetOutOfRangeError as error:
                await self._start_over(consumer, error.args[0])
                continue
            for tp, messages in batches.items():
                target = self._targets.get(tp)  # a standby closed or taken over meanwhile is skipped
                if target is not None and messages:
                    task, stores, name = target
                    stores[name].store.restore_batch([(m.key, m.value) for m in messages], messages[-1].offset + 1)
                    self.metrics.standby_applied(task, name, len(messages))
            await self._report_lags(consumer)

    async def _start_over(self, consumer: AIOKafkaConsumer, positions: Mapping[TopicPartition, int]) -> None:
        """The changelog's start moved past these stores' positions: wipe them and read from the start.

        As a restore does (see Restorer._start_over): reading on from the log start would
        keep keys whose tombstones were among the deleted records.
        """
        restart = []
        for tp, position in positions.items():
            target = self._targets.get(tp)
            if target is None or tp not in consumer.assignment():
                continue
            task, stores, name = target
            log.warning("standby %s: the changelog %s starts past the store's position %d now; the records between "
                        "are gone, so the store is wiped and read from the start", task, tp, position)
            stores[name].store.wipe()
            restart.append(tp)
        if restart:
            await consumer.seek_to_beginning(*restart)

    async def _report_lags(self, consumer: AIOKafkaConsumer) -> None:
        """Set each standby store's lag from the log end (or last stable offset) its latest fetch told.

        Counted from the fetch position, not the store's offset: under exactly-once the position
        steps over the transaction markers, which a caught-up store's offset never reaches.
        """
        for tp, (task, _, name) in list(self._targets.items()):
            end = consumer.last_stable_offset(tp) if self.config.exactly_once else consumer.highwater(tp)
            if end is None or end < 0 or tp not in consumer.assignment():
                continue  # not fetched yet, or assigned after this round began
            position = await consumer.position(tp)
            target = self._targets.get(tp)
            if target is not None and target[0] == task:  # not closed or taken over while awaited
                self.metrics.set_standby_lag(task, name, max(0, end - position))
