"""Opens each task's stores and has them restored from their changelogs before the task runs."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path

from aiokafka import TopicPartition

from streamer.config import StreamerConfig
from streamer.errors import StateStoreError
from streamer.runtime.clients import changelog_consumer
from streamer.runtime.restorer import Restorer
from streamer.runtime.task_core import task_id_of
from streamer.runtime.task_stores import TaskStores, open_task_stores
from streamer.topology.topology import SubTopology


def check_state_dir(root: Path) -> None:
    """``root`` exists and takes a synced write, or a StateStoreError says what to change.

    Checked before any store opens, so a full or read-only disk stops the worker at start with
    the directory's name instead of failing in RocksDB halfway through opening a task.
    """
    probe = root / f".write-check-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as handle:
            handle.write(bytes(4096))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        fix = ("free space on its file system or move state_dir to a larger one" if full else
               "give the worker a directory it can write (state_dir, --state-dir)")
        raise StateStoreError(f"state directory {root} is not usable: {error.strerror or error}; {fix}") from None
    finally:
        with contextlib.suppress(OSError):  # nothing to remove when the directory itself failed
            probe.unlink()


class StateManager:
    """Stores live under ``<state_dir>/<application_id>/<task_id>/<store>``."""

    def __init__(self, config: StreamerConfig) -> None:
        self.config = config
        self.root = Path(config.state_dir) / config.application_id
        if config.state_store == "rocksdb":
            check_state_dir(self.root)
        self._restorer_instance: Restorer | None = None
        self._restorer_lock = asyncio.Lock()
        #: (changelog topic, records) after each restored fetch; the worker counts them
        self.on_restored: Callable[[str, int], None] | None = None
        #: (changelog topic, partition, records to restore) when a partition's restore begins
        self.on_restore_begin: Callable[[str, int, int], None] | None = None
        #: (changelog topic, partition) when a task's restore returned, done or not (closed, failed)
        self.on_restore_end: Callable[[str, int], None] | None = None
        #: the restorer logs progress lines; off while a progress bar shows it
        self.log_progress = True

    def open(self, subtopology: SubTopology, partition: int) -> TaskStores:
        task_dir = self.root / task_id_of(subtopology.id, partition)
        return open_task_stores(subtopology, partition, task_dir, self.config.state_store, self.config.application_id)

    async def _restorer(self) -> Restorer:
        async with self._restorer_lock:  # tasks open concurrently; they must share one consumer
            return await self._start_restorer()

    async def _start_restorer(self) -> Restorer:
        if self._restorer_instance is None:
            # its own fetches (ChangelogReader) size themselves; the consumer lends its client and isolation
            consumer = changelog_consumer(self.config, "restore", read_ahead=False)
            await consumer.start()
            self._restorer_instance = Restorer(consumer, self.on_restored, self.on_restore_begin, self.log_progress)
        return self._restorer_instance

    async def restore(self, stores: TaskStores) -> None:
        """Bring every logged store of a task up to its changelog's end."""
        targets = {TopicPartition(topic, stores.partition): stores[name] for name, topic in stores.changelogs.items()}
        if not targets:
            return
        try:
            await (await self._restorer()).restore(targets)
        finally:
            if self.on_restore_end is not None:
                for tp in targets:
                    self.on_restore_end(tp.topic, tp.partition)

    async def close(self) -> None:
        if self._restorer_instance is not None:
            await self._restorer_instance.close()
            await self._restorer_instance.consumer.stop()
            self._restorer_instance = None
