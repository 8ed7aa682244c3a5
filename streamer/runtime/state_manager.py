"""Opens each task's stores and restores them from their changelogs before the task runs.

Restore reads all restoring changelog partitions with one consumer in large fetches
and writes each fetch to its store as one WriteBatch. It fails loudly: an error or a
stalled restore stops the worker instead of leaving a task silently waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamer.config import StreamerConfig
from streamer.errors import StateStoreError
from streamer.runtime.clients import connection_options
from streamer.runtime.task import task_id_of
from streamer.runtime.task_stores import TaskStores
from streamer.state import open_store
from streamer.state.write_cache import WriteCache
from streamer.topology.topology import SubTopology

log = logging.getLogger("streamer.restore")

#: Give up on a restore that made no progress for this long.
RESTORE_STALL_TIMEOUT_S = 120.0
PROGRESS_EVERY_S = 5.0


class StateManager:
    """Stores live under ``<state_dir>/<application_id>/<task_id>/<store>``."""

    def __init__(self, config: StreamerConfig, partition_counts: dict[str, int]) -> None:
        self.config = config
        self.root = Path(config.state_dir) / config.application_id
        self._consumer: AIOKafkaConsumer | None = None

    def open(self, subtopology: SubTopology, partition: int) -> TaskStores:
        task_dir = self.root / task_id_of(subtopology.id, partition)
        caches: dict[str, WriteCache] = {}
        changelogs: dict[str, str] = {}
        for spec in subtopology.stores:
            try:
                store = open_store("rocksdb", task_dir, spec.name)
            except Exception as error:
                raise StateStoreError(
                    f"cannot open store {spec.name} in {task_dir}: {error}. Is another worker using the "
                    "same state_dir? Give each worker on a machine its own --state-dir"
                ) from error
            caches[spec.name] = WriteCache(store)
            if spec.logged:
                changelogs[spec.name] = spec.changelog_topic(self.config.application_id)
        return TaskStores(partition, caches, changelogs)

    async def _restore_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                client_id=f"{self.config.application_id}-restore",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed" if self.config.exactly_once else "read_uncommitted",
                max_partition_fetch_bytes=8 * 1_048_576,
                fetch_max_bytes=32 * 1_048_576,
                **connection_options(self.config),
            )
            await self._consumer.start()
        return self._consumer

    async def restore(self, task_stores: list[TaskStores]) -> None:
        """Bring every logged store of these tasks up to its changelog's end."""
        targets: dict[TopicPartition, WriteCache] = {}
        for stores in task_stores:
            for name, topic in stores.changelogs.items():
                targets[TopicPartition(topic, stores.partition)] = stores[name]
        if not targets:
            return
        consumer = await self._restore_consumer()
        ends = await consumer.end_offsets(list(targets))
        pending: dict[TopicPartition, int] = {}
        for tp, cache in targets.items():
            start = cache.store.changelog_offset() or 0
            if start > ends[tp]:
                log.warning("store for %s is ahead of its changelog (%d > %d); rebuilding it", tp, start, ends[tp])
                cache.store.wipe()
                start = 0
            if start < ends[tp]:
                pending[tp] = start
        if pending:
            await self._read_changelogs(consumer, pending, ends, targets)

    async def _read_changelogs(
        self,
        consumer: AIOKafkaConsumer,
        pending: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        targets: dict[TopicPartition, WriteCache],
    ) -> None:
        total = sum(ends[tp] - start for tp, start in pending.items())
        log.info("restoring %d changelog partitions, up to %d records", len(pending), total)
        consumer.assign(list(pending))
        for tp, start in pending.items():
            consumer.seek(tp, start)
        began = last_progress = last_report = time.monotonic()
        done = 0
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=200, max_records=100_000)
            for tp, messages in batches.items():
                if messages:
                    targets[tp].store.restore_batch([(m.key, m.value) for m in messages], messages[-1].offset + 1)
                    done += len(messages)
                    last_progress = time.monotonic()
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    del pending[tp]
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                log.info("restored %d of %d records (%.0f records/s)", done, total, done / (now - began))
            if now - last_progress > RESTORE_STALL_TIMEOUT_S:
                raise StateStoreError(
                    f"restore made no progress for {RESTORE_STALL_TIMEOUT_S:.0f}s on {sorted(map(str, pending))}; "
                    "check the broker and the changelog topics"
                )
        elapsed = max(time.monotonic() - began, 1e-9)
        log.info("restored %d records in %.2fs (%.0f records/s)", done, elapsed, done / elapsed)
        consumer.unsubscribe()

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
