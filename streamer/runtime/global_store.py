"""Global tables on a worker: one local copy of every partition, kept current by one updater.

Every worker keeps each global table whole, in a store of its own outside any task
(``<state_dir>/<application_id>/global/<name>``). The table's topic is its changelog, so
the store holds the topic's key and value bytes as they are (a tombstone deletes, a
record without a key is skipped) and records how far it has read each partition.

The updater is not part of the consumer group: a plain consumer assigned every
partition of every global topic, ``read_committed`` under exactly-once, so nothing a
transaction may still abort ever reaches a store. Before the worker joins its group it
restores each store to the end of its topic through the Restorer (the tasks' batched
restore); then it follows the topics and applies each fetch in one synchronous step on
the event loop, so a task reads a fetch either wholly applied or not at all.

Offsets per partition do not fit the store's single changelog offset, so they go to a
checkpoint file next to the store, written only after the store was flushed: the
checkpoint may lag the data, never lead it. Re-reading from a lagging checkpoint is
harmless, because applying a table's records again ends in the same rows. The store's
own offset slot holds the checkpoint's generation, so a store that lost its data (a
memory store, a deleted directory) is told apart from one the checkpoint describes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streamer.config import StreamerConfig
from streamer.errors import StateStoreError
from streamer.runtime.clients import changelog_consumer
from streamer.runtime.restorer import Restorer
from streamer.runtime.store_views import StoreView
from streamer.state import KeyValueStore, StoreKind, WriteCache, open_store
from streamer.state.files import write_atomically
from streamer.state.store import Entry
from streamer.state.typed_store import TypedStore
from streamer.topology.topology import GlobalStoreSpec

log = logging.getLogger("streamer.global")

#: Most records of one fetch the updater applies at once while it follows its topics.
FETCH_RECORDS = 100_000
#: Checkpoint after this many applied records (and at most once per commit interval), and at close.
CHECKPOINT_RECORDS = 10_000


class ReadOnlyCache(WriteCache):
    """A global store as tasks and store views see it: reads only; its topic is the only writer."""

    def put(self, key: bytes, value: bytes) -> None:
        raise StateStoreError(f"global store {self.name} is read-only: it changes only through its topic")

    def delete(self, key: bytes) -> None:
        raise StateStoreError(f"global store {self.name} is read-only: it changes only through its topic")


class GlobalStore:
    """One global table's local copy: its store, the next offset to read per partition, its checkpoint."""

    def __init__(self, spec: GlobalStoreSpec, directory: Path, backend: StoreKind) -> None:
        self.spec = spec
        if backend == "rocksdb":
            directory.mkdir(parents=True, exist_ok=True)
        self.store: KeyValueStore = open_store(backend, directory, spec.name)
        self.reader = ReadOnlyCache(self.store)
        self._checkpoint_path = directory / f"{spec.name}.checkpoint"
        #: partition -> next offset to read; a partition missing here is read from its start
        self.offsets: dict[int, int] = {}
        #: records applied since the last checkpoint, and in all
        self.unchecked = 0
        self.applied = 0
        self._generation = self._resume()

    @property
    def name(self) -> str:
        return self.spec.name

    def view(self) -> StoreView:
        """The table's rows as values, for the local read API and the test driver."""
        return StoreView(TypedStore(self.reader, self.spec.store.key_serde, self.spec.store.value_serde))

    def _resume(self) -> int:
        """Offsets from the checkpoint if it describes this store; otherwise start empty."""
        stored = self.store.changelog_offset()
        checkpoint: tuple[int, dict[int, int]] | None = None  # (generation, offsets)
        try:
            read = json.loads(self._checkpoint_path.read_text())
            checkpoint = int(read["generation"]), {int(p): int(o) for p, o in read["offsets"].items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("unreadable checkpoint %s (%r); rebuilding global store %s", self._checkpoint_path, error,
                        self.name)
        if checkpoint is not None and stored is not None and stored >= checkpoint[0]:
            self.offsets = checkpoint[1]
            return stored
        if stored is not None or checkpoint is not None:
            log.info("global store %s does not match its checkpoint; reading %s from the start", self.name,
                     self.spec.topic)
        self.wipe()
        return 0

    def apply(self, partition: int, messages: list[Any]) -> None:
        """Write one fetch of the topic's messages (``key``, ``value``, ``offset``) in one batch."""
        if messages:
            self.write(partition, [(m.key, m.value) for m in messages], messages[-1].offset + 1)

    def write(self, partition: int, entries: Iterable[tuple[bytes | None, bytes | None]], next_offset: int) -> None:
        """Apply records up to ``next_offset`` of ``partition``; records without a key are not rows."""
        rows = [(key, value) for key, value in entries if key is not None]
        self.store.write_batch(rows, None)
        self.offsets[partition] = next_offset
        self.unchecked += len(rows)
        self.applied += len(rows)

    def checkpoint(self) -> None:
        """Flush the store, then record the offsets it now reflects (the order keeps them from leading)."""
        self._generation += 1
        self.store.write_batch((), self._generation)
        self.store.flush()
        self._checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self._checkpoint_path, json.dumps({
            "generation": self._generation, "offsets": {str(p): o for p, o in sorted(self.offsets.items())}}).encode())
        self.unchecked = 0

    def wipe(self) -> None:
        self.store.wipe()
        self.offsets.clear()
        self._checkpoint_path.unlink(missing_ok=True)

    def close(self) -> None:
        self.store.close()


class _PartitionTarget:
    """One partition of a global store in the shape the Restorer restores (a ``store`` with an offset)."""

    def __init__(self, table: GlobalStore, partition: int) -> None:
        self.table = table
        self.partition = partition

    @property
    def store(self) -> _PartitionTarget:
        return self

    def changelog_offset(self) -> int | None:
        return self.table.offsets.get(self.partition)

    def restore_batch(self, entries: Iterable[Entry], next_offset: int) -> None:
        self.table.write(self.partition, entries, next_offset)

    def wipe(self) -> None:
        self.table.wipe()


class GlobalUpdater:
    """Restores every global store of a worker, then keeps them current until ``close``.

    ``on_failure`` hears of an error that stopped the updater (the worker stops on it:
    its joins would otherwise read a table that no longer changes).
    """

    def __init__(self, specs: list[GlobalStoreSpec], config: StreamerConfig, partition_counts: dict[str, int],
                 on_failure: Callable[[BaseException], None]) -> None:
        self.config = config
        self.on_failure = on_failure
        directory = Path(config.state_dir) / config.application_id / "global"
        self.stores: dict[str, GlobalStore] = {}
        try:
            for spec in specs:
                self.stores[spec.name] = GlobalStore(spec, directory, config.state_store)
        except Exception as error:
            self._close_stores()
            kind = type(error) if isinstance(error, StateStoreError) else StateStoreError  # a lock stays a lock
            raise kind(f"cannot open the global stores in {directory}: {error}") from error
        self._by_topic = {store.spec.topic: store for store in self.stores.values()}
        self.partitions = [TopicPartition(topic, p) for topic in sorted(self._by_topic)
                           for p in range(partition_counts[topic])]
        #: records read while restoring at start (the tail since the last checkpoint)
        self.restored = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._follower: asyncio.Task[None] | None = None

    @property
    def readers(self) -> dict[str, WriteCache]:
        """Store name -> the read-only view tasks get from ``context.get_store``."""
        return {name: store.reader for name, store in self.stores.items()}

    async def start(self) -> None:
        """Restore every store to the end of its topic, then follow the topics in the background."""
        self._consumer = changelog_consumer(self.config, "global", read_ahead=True)
        await self._consumer.start()
        await self._restore()
        self._follower = asyncio.get_running_loop().create_task(self._follow(), name="global-updater")
        self._follower.add_done_callback(self._stopped)

    async def _restore(self) -> None:
        assert self._consumer is not None
        ends = await self._consumer.end_offsets(self.partitions)
        for tp, end in ends.items():
            store = self._by_topic[tp.topic]
            if store.offsets.get(tp.partition, 0) > end:  # the topic was re-created: its old rows are gone
                log.warning("global store %s is ahead of %s (%d > %d); rebuilding it", store.name, tp,
                            store.offsets[tp.partition], end)
                store.wipe()
        before = sum(store.applied for store in self.stores.values())
        began = time.monotonic()
        await Restorer(self._consumer).restore(
            {tp: _PartitionTarget(self._by_topic[tp.topic], tp.partition) for tp in self.partitions})
        self.restored = sum(store.applied for store in self.stores.values()) - before
        for store in self.stores.values():
            if store.unchecked:
                store.checkpoint()
        log.info("global stores %s restored: %d records in %.2fs", ", ".join(sorted(self.stores)), self.restored,
                 time.monotonic() - began)

    async def _follow(self) -> None:
        """Apply each fetch as it comes, all of it in one step between the tasks' batches."""
        consumer = self._consumer
        assert consumer is not None
        consumer.assign(self.partitions)
        for tp in self.partitions:
            consumer.seek(tp, self._by_topic[tp.topic].offsets.get(tp.partition, 0))
        interval = self.config.effective_commit_interval_ms / 1000
        next_checkpoint = time.monotonic() + interval
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=FETCH_RECORDS)
            for tp, messages in batches.items():
                self._by_topic[tp.topic].apply(tp.partition, messages)
            now = time.monotonic()
            if now >= next_checkpoint:
                next_checkpoint = now + interval
                for store in self.stores.values():
                    if store.unchecked >= CHECKPOINT_RECORDS:
                        store.checkpoint()

    def _stopped(self, follower: asyncio.Task[None]) -> None:
        if not follower.cancelled() and follower.exception() is not None:
            error = follower.exception()
            assert error is not None
            log.error("the global updater failed: %r", error)
            self.on_failure(StateStoreError(f"the global updater stopped: {error!r}; global tables would go stale"))

    async def close(self) -> None:
        """Stop following, checkpoint what was applied, release consumer and stores."""
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
        if self._consumer is not None:
            try:
                await self._consumer.stop()
            except KafkaError as error:
                log.warning("closing the global consumer failed: %r", error)
        try:
            for store in self.stores.values():
                if store.unchecked:
                    store.checkpoint()
        finally:
            self._close_stores()

    def _close_stores(self) -> None:
        for store in self.stores.values():
            store.close()
