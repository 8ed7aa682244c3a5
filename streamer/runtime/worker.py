"""The worker: one member of the application's consumer group, running the tasks it is assigned.

One poll loop fetches for all assigned partitions and hands each batch to the task of
its (sub-topology, partition); each task runs as its own asyncio task. The poll loop
also commits on the commit interval. Rebalances close revoked tasks after a last
commit and open assigned ones, restoring their state before they process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from streamer.config import StreamerConfig
from streamer.runtime.assignor import StreamsAssignor
from streamer.errors import BrokerUnavailableError, StreamerError, TopologyError
from streamer.runtime.clients import connection_options, raise_security_failure
from streamer.runtime.cluster import ClusterMetadata
from streamer.runtime.gc_tuning import tune_for_throughput
from streamer.runtime.global_store import GlobalUpdater
from streamer.runtime.guarantees import CommitPath, commit_path_for
from streamer.runtime.transactions import producer_fenced
from streamer.runtime.health import HealthServer, Heartbeat
from streamer.runtime.local_tasks import checkpointed_offsets, offset_sum, process_id, remove_unused, write_checkpoint
from streamer.runtime.metrics import WorkerMetrics
from streamer.runtime.production import OutputTopics
from streamer.runtime.queries import LocalSessionStoreView, LocalStoreView, LocalWindowStoreView
from streamer.runtime.query_server import QueryServer
from streamer.runtime.restore_progress import RestoreProgress
from streamer.runtime.standby import StandbyTasks
from streamer.runtime.state_manager import StateManager
from streamer.runtime.store_views import view_of
from streamer.runtime.task import StreamTask
from streamer.runtime.task_assignment import AssignmentSettings, MemberState, TaskId
from streamer.runtime.task_core import task_id_of
from streamer.runtime.topics import TopicManager
from streamer.topology.topology import Topology

log = logging.getLogger("streamer.worker")

#: A task whose transaction fails this many times in a row stops the worker.
MAX_RECOVERIES = 5
#: Longest the poll loop waits for records before it looks at commits, lags and heartbeats again.
POLL_TIMEOUT_MS = 100
#: How often the poll loop refreshes the consumer lag gauges.
LAG_METRICS_INTERVAL_S = 1.0
#: How often a worker still waiting for its first assignment says so.
JOIN_NOTICE_INTERVAL_S = 5.0
#: Longest wait for the changelog end offsets a rebalance's lags are computed from.
END_OFFSETS_TIMEOUT_S = 5.0
#: Most time between two looks for task directories unused for ``state_cleanup_delay_ms``.
CLEANUP_INTERVAL_S = 60.0


class _Listener(ConsumerRebalanceListener):
    """Forwards rebalance callbacks to the worker; aiokafka only logs what they raise, so we keep it."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker._guard(self.worker._on_revoked(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.worker._guard(self.worker._on_assigned(assigned))


class Worker:
    """Runs a topology as one group member until ``stop()``; ``run()`` raises what stopped it."""

    def __init__(self, topology: Topology, config: StreamerConfig) -> None:
        config.require_application_id()
        self.topology = topology
        self.config = config
        self.tasks: dict[str, StreamTask] = {}
        self._runners: dict[str, asyncio.Task[None]] = {}
        self._starting: dict[str, asyncio.Task[None]] = {}
        #: Closing tasks whose runner was fenced (a zombie worker's), kept until they are closed.
        self._closing_fenced: set[asyncio.Task[None]] = set()
        self._recoveries: dict[str, int] = {}
        self._task_of: dict[TopicPartition, StreamTask] = {}
        self._sub_of_topic: dict[str, int] = {}
        self._paused: set[TopicPartition] = set()
        self._stopping = asyncio.Event()
        self._fatal: BaseException | None = None
        #: the commit under way in the background, if any (the poll loop goes on fetching meanwhile)
        self._committing: asyncio.Task[None] | None = None
        self._partition_counts: dict[str, int] = {}
        self._outputs: OutputTopics | None = None  # output topics' size limits, read at start-up
        #: tasks suspended on revocation (committed, stores open) until the assignment says whether they stay
        self._suspended: dict[str, StreamTask] = {}
        self._stateful_subtopologies = frozenset(sub.id for sub in topology.subtopologies
                                                 if any(spec.logged for spec in sub.stores))
        #: streamer's partition assignor (this worker's subscription; the group's assignment when it leads)
        self.assignor: StreamsAssignor | None = None
        self._probe: asyncio.TimerHandle | None = None
        self._join_notice: asyncio.Task[None] | None = None
        #: warm copies of tasks active elsewhere (num_standby_replicas, warm-ups)
        self.standbys: StandbyTasks | None = None
        self._cleanup: asyncio.TimerHandle | None = None
        self.admin: AIOKafkaAdminClient | None = None
        #: produces and commits as the processing guarantee says; created at start
        self.guarantee: CommitPath | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.state: StateManager | None = None
        #: keeps the global tables, restored before the worker joins its group
        self.global_updater: GlobalUpdater | None = None
        self.started = asyncio.Event()
        #: this worker's metrics, in a registry of its own (several workers may share a process)
        self.metrics = WorkerMetrics()
        self.metrics.watch_stores(lambda: self.tasks.values())  # store sizes, read at a scrape
        #: the poll loop's heartbeat, which /health reads
        self.heartbeat = Heartbeat()
        self.health: HealthServer | None = None
        #: which worker holds which store partitions, for interactive queries (the assignment updates it)
        self.cluster = ClusterMetadata(topology, config.application_id, config.application_server)
        self.queries: QueryServer | None = None
        self._rebalance_began: float | None = None
        self._store_of_changelog = {spec.changelog_topic(config.application_id): spec.name
                                    for spec in topology.stores() if spec.logged}

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to finish its current batches, commit and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        tune_for_throughput()
        try:
            await self._start()
            self.started.set()
            await self._poll_loop()
        except Exception as error:
            self._fail(error)  # shut down without committing what the failure may have spoiled
        finally:
            await self._shutdown()
        if self._fatal is not None:
            raise self._fatal

    async def _start(self) -> None:
        config = self.config
        if config.metrics_port is not None:  # first, so probes get an answer (503) while the worker starts
            self.health = HealthServer(self.metrics, self.heartbeat, self.ready, port=config.metrics_port)
            await self.health.start()
        self.admin = AIOKafkaAdminClient(client_id=f"{config.application_id}-admin", **connection_options(self.config))
        await self._reach_broker(self.admin.start())
        self._partition_counts = await TopicManager(self.admin, self.topology, config).prepare()
        self._outputs = await OutputTopics.read(self.admin, self.topology, config)
        if self.topology.global_stores:
            self.global_updater = GlobalUpdater(self.topology.global_stores, config, self._partition_counts, self._fail)
            await self.global_updater.start()
        self.cluster.set_partition_counts(self._partition_counts)
        if config.application_server is not None:  # answers "retry" (503) until tasks run
            self.queries = QueryServer(self.cluster, lambda: {(t.subtopology.id, t.partition): t.stores
                                                              for i, t in self.tasks.items() if i in self._runners},
                                       self.global_updater.stores if self.global_updater is not None else None)
            await self.queries.start()
        for sub in self.topology.subtopologies:
            for topic in sub.source_topics(config.application_id):
                self._sub_of_topic[topic] = sub.id
        self.state = StateManager(config)
        RestoreProgress(self.metrics, self._store_of_changelog).attach(self.state)  # metrics, and a bar on a tty
        self.consumer = AIOKafkaConsumer(
            group_id=config.application_id,
            client_id=f"{config.application_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed" if config.exactly_once else "read_uncommitted",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_poll_interval_ms=config.max_poll_interval_ms,
            max_partition_fetch_bytes=config.max_partition_fetch_bytes,
            fetch_max_bytes=config.fetch_max_bytes,
            # streamer's assignor alone (tasks, sticky, standbys, warm-ups): aiokafka 0.14 sends one
            # JoinGroup per configured assignor, and the second one starts a new rebalance, which
            # with several workers can go on for ever (seen on a 3-node cluster).
            partition_assignment_strategy=(self._make_assignor(),),
            group_instance_id=config.group_instance_id,
            **connection_options(self.config),
        )
        self.guarantee = commit_path_for(config, process_id(self.state.root), lambda: list(self.tasks.values()))
        await self._reach_broker(self.guarantee.start(self.consumer))
        await self._reach_broker(self.consumer.start())
        # Subscribed only now, so that start() does not wait for the first assignment: a join can
        # take a dead member's whole session timeout, and the broker is reachable meanwhile.
        self.consumer.subscribe(topics=sorted(self._sub_of_topic), listener=_Listener(self))
        self._join_notice = asyncio.get_running_loop().create_task(self._note_join_wait(), name="join-notice")
        log.info("worker of %s started; topics %s", config.application_id, ", ".join(sorted(self._sub_of_topic)))

    async def _reach_broker(self, starting: Any) -> None:
        try:
            await asyncio.wait_for(starting, self.config.broker_timeout_s)
        except (KafkaConnectionError, TimeoutError, OSError) as error:
            await raise_security_failure(self.config)  # a broker that answers but refuses TLS or SASL
            raise BrokerUnavailableError(
                f"no Kafka broker answered at {self.config.bootstrap_servers} within "
                f"{self.config.broker_timeout_s:.0f}s ({error!r}); check --bootstrap-servers and that the broker runs"
            ) from None

    async def _shutdown(self) -> None:
        if self.queries is not None:
            await self.queries.close()
        self._stop_rebalance_timers()
        if self.consumer is not None and (self.tasks or self._suspended):
            clean = self._fatal is None
            suspended, self._suspended = list(self._suspended.values()), {}
            await self._close_tasks(list(self.tasks.values()) + suspended, commit=clean)
        if self.consumer is not None:
            await self._stop_quietly("consumer", self.consumer.stop())
        if self.guarantee is not None:
            await self._stop_quietly("producer", self.guarantee.close())
        if self.standbys is not None:
            await self.standbys.close()
        if self.state is not None:
            await self.state.close()
        if self.global_updater is not None:
            await self.global_updater.close()
        if self.admin is not None:
            await self.admin.close()
        if self.health is not None:
            await self.health.close()
        log.info("worker of %s stopped", self.config.application_id)

    async def _stop_quietly(self, what: str, stopping: Any) -> None:
        try:
            await stopping
        except KafkaError as error:
            log.warning("closing the %s failed: %r", what, error)

    def ready(self) -> bool:
        """A member of the group with every assigned task restored and running (what /ready answers)."""
        consumer = self.consumer
        if consumer is None or self._stopping.is_set() or not self.started.is_set():
            return False
        if consumer._subscription.reassignment_in_progress:  # joining the group or rebalancing
            return False
        # aiokafka sets the assignment before the listener opens its tasks: each needs a running task
        return not self._starting and all(tp in self._task_of and self._task_of[tp].task_id in self._runners
                                          for tp in consumer.assignment())

    def store(self, name: str) -> LocalStoreView | LocalWindowStoreView | LocalSessionStoreView:
        """Read store ``name`` as it is in this worker's running tasks (see streamer.runtime.queries).

        A global table is whole on every worker: its view is this worker's copy.
        """
        if self.global_updater is not None and name in self.global_updater.stores:
            return LocalStoreView(name, [self.global_updater.stores[name].view()])
        specs = {spec.name: spec for spec in self.topology.stores()}
        if name not in specs:
            raise TopologyError(f"the topology has no store {name!r}; it has {sorted(specs)}")
        spec = specs[name]
        caches = [task.stores[name] for task_id, task in sorted(self.tasks.items()) if task_id in self._runners
                  and name in task.stores.caches]
        views = [view_of(spec, cache) for cache in caches]
        local = {"window": LocalWindowStoreView, "session": LocalSessionStoreView}.get(spec.kind, LocalStoreView)
        return local(name, views)

    # -- the poll loop ---------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        assert self.consumer is not None
        interval = self.config.effective_commit_interval_ms / 1000
        next_commit = time.monotonic() + interval
        next_lag_report = 0.0
        try:
            await self._poll(interval, next_commit, next_lag_report)
        finally:
            if self._committing is not None:
                await self._committing  # the last periodic commit ends before tasks close; its failure counts

    async def _poll(self, interval: float, next_commit: float, next_lag_report: float) -> None:
        assert self.consumer is not None
        while not self._stopping.is_set():
            self.heartbeat.beat()
            # A fetch returns as soon as records come; with none, wait no later than the next commit is due
            # (not while one runs: that would spin).
            wait_ms = POLL_TIMEOUT_MS if self._committing is not None else \
                min(POLL_TIMEOUT_MS, max(0, int((next_commit - time.monotonic()) * 1000)))
            batches = await self.consumer.getmany(timeout_ms=wait_ms, max_records=self.config.max_poll_records)
            for tp, messages in batches.items():
                task = self._task_of.get(tp)
                if task is not None:
                    task.enqueue(tp, messages)
                elif messages and tp in self.consumer.assignment():
                    # Fetched while its task is still being opened: read it again later, never drop it.
                    self.consumer.seek(tp, messages[0].offset)
            self._apply_backpressure()
            await self._note_lags()
            now = time.monotonic()
            if now >= next_lag_report:
                await self._report_lags()
                next_lag_report = now + LAG_METRICS_INTERVAL_S
            if self._committing is not None and self._committing.done():
                committing, self._committing = self._committing, None
                committing.result()  # a commit that raised stops the worker
            if self._committing is None and (now >= next_commit or any(t.wants_early_commit
                                                                       for t in self.tasks.values())):
                self._committing = asyncio.get_running_loop().create_task(self._commit_and_recover(), name="commit")
                next_commit = now + interval

    def _apply_backpressure(self) -> None:
        """Pause fetching for tasks that are behind; resume them once they caught up."""
        assert self.consumer is not None
        for tp, task in self._task_of.items():
            if tp in self._paused:
                if task.buffered(tp) < task.buffer_limit // 2 and task.task_id in self._runners:
                    self._resume(tp)
            elif task.buffered(tp) >= task.buffer_limit:
                self.consumer.pause(tp)
                self._paused.add(tp)

    async def _note_lags(self) -> None:
        """Tell tasks that order several partitions how far behind the broker their empty ones are."""
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        for task in self.tasks.values():
            if task.group is None or task.task_id not in self._runners:
                continue
            lags = {}
            for tp in task.partitions:
                if tp in assigned and task.group.is_empty(tp):
                    lags[tp] = await self._lag(tp)
            if lags:
                task.note_lags(lags)

    async def _report_lags(self) -> None:
        """Set the lag gauge of every assigned partition whose log end a fetch told us.

        Counted from what the task processed; once it has nothing of the partition queued,
        from the fetch position, which also steps over transaction markers (under
        exactly-once the last processed record is never the last offset before the end).
        """
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        for tp, task in self._task_of.items():
            if tp not in assigned or task.task_id not in self._runners:
                continue
            end = self.consumer.last_stable_offset(tp) if self.config.exactly_once else self.consumer.highwater(tp)
            if end is None or end < 0:
                continue
            position = task.consumed.get(tp, 0)
            if task.buffered(tp) == 0:
                position = max(position, await self.consumer.position(tp))
            self.metrics.set_lag(tp.topic, tp.partition, max(0, end - position))

    async def _lag(self, tp: TopicPartition) -> int | None:
        """Records of ``tp`` on the broker not yet handed to its task; None until a fetch told us."""
        assert self.consumer is not None
        end = self.consumer.last_stable_offset(tp) if self.config.exactly_once else self.consumer.highwater(tp)
        if end is None or end < 0:
            return None
        # A fetch answered for it, so its position is valid and position() returns at once.
        return max(0, end - await self.consumer.position(tp))

    def _resume(self, tp: TopicPartition) -> None:
        assert self.consumer is not None
        self.consumer.resume(tp)
        self._paused.discard(tp)

    async def _guard(self, step: Any) -> None:
        """Run a rebalance step; a failure stops the worker instead of being only logged."""
        try:
            await step
        except Exception as error:  # aiokafka would swallow it
            log.exception("rebalance step failed")
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        if self._fatal is None:
            self._fatal = error
        self._stopping.set()

    # -- commits ---------------------------------------------------------------------------

    async def commit(self, tasks: list[StreamTask] | None = None) -> list[tuple[StreamTask, BaseException]]:
        """Commit the given (default: all) tasks that made progress; returns the tasks whose commit failed."""
        assert self.guarantee is not None
        chosen = [t for t in (tasks if tasks is not None else self.tasks.values()) if t.needs_commit and not t.halted]
        if not chosen:
            return []
        began = time.perf_counter()
        failed = await self.guarantee.commit(chosen)
        lost = {t.task_id for t, _ in failed}
        for task in chosen:
            if task.task_id not in lost:
                self._recoveries.pop(task.task_id, None)
        self.metrics.commit_latency.observe(time.perf_counter() - began)
        self.metrics.commits.inc(sum(task.task_id not in lost for task in chosen))  # v2 fails tasks beyond chosen
        return failed

    async def _commit_and_recover(self) -> None:
        await self._recover(await self.commit())

    async def _recover(self, failed: list[tuple[StreamTask, BaseException]]) -> None:
        """Commits failed and were aborted: close the tasks (their uncommitted work is gone) and reopen them.

        A fenced task is not reopened: a newer owner has it, and a rebalance will take
        its partitions from this worker.
        """
        assert self.guarantee is not None
        failed = [(t, e) for t, e in failed if self.tasks.get(t.task_id) is t]  # not closed by a rebalance since
        if not failed:
            return
        self.metrics.transaction_aborts.inc(len({id(error) for _, error in failed}))
        reopen = []
        for task, error in failed:
            count = self._recoveries[task.task_id] = self._recoveries.get(task.task_id, 0) + 1
            if count > MAX_RECOVERIES:
                self._fail(StreamerError(
                    f"task {task.task_id} failed to commit {MAX_RECOVERIES} times in a row, last with {error!r}; "
                    "stopping rather than retrying forever"
                ))
                return
            fenced = isinstance(error, self.guarantee.fencing_errors) or producer_fenced(task.producer)
            log.warning("commit of task %s failed (%r); %s", task.task_id, error,
                        "fenced, closing it" if fenced else "aborted, reopening it")
            if not fenced:
                reopen.append(task)
        await self._close_tasks([t for t, _ in failed], commit=False)
        if self.consumer is None or self._stopping.is_set():
            return
        if len(reopen) < len(failed):
            # Their partitions stay assigned here, and nobody works on them until the group assigns
            # again: rejoin (a zombie would anyway), so that the group decides who runs them.
            self.consumer._coordinator.request_rejoin()
        assigned = self.consumer.assignment()
        partitions = {tp for task in reopen for tp in task.partitions if tp in assigned}
        if partitions:  # each reopened task seeks to its committed offsets as it starts (_seek_committed)
            await self._open_tasks([(t.subtopology.id, t.partition) for t in reopen
                                    if any(tp in partitions for tp in t.partitions)], partitions)

    # -- rebalancing -----------------------------------------------------------------------

    def _make_assignor(self) -> StreamsAssignor:
        assert self.state is not None
        config = self.config
        self.standbys = StandbyTasks(config, {sub.id: sub for sub in self.topology.subtopologies}, self.state.open,
                                     self.state.root, self._fail, self.metrics)
        sources: dict[int, list[str]] = {}
        for topic, sub in self._sub_of_topic.items():
            sources.setdefault(sub, []).append(topic)
        settings = AssignmentSettings(config.num_standby_replicas, config.acceptable_recovery_lag,
                                      config.max_warmup_replicas)
        self.assignor = StreamsAssignor(sources, self._stateful_subtopologies, process_id(self.state.root),
                                        config.application_server, self._local_tasks, settings,
                                        config.probing_rebalance_interval_ms)
        return self.assignor

    def _local_tasks(self) -> MemberState:
        """What this worker reports when it joins: the tasks it ran, and how far its local state of each is."""
        held = {**self._suspended, **{i: t for i, t in self.tasks.items() if i in self._runners}}
        previous = frozenset((t.subtopology.id, t.partition) for t in held.values())
        offsets: dict[TaskId, int] = {}
        if self.state is not None and self.config.state_store == "rocksdb":
            offsets = checkpointed_offsets(self.state.root, self._stateful_subtopologies)
        if self.standbys is not None:
            offsets.update(self.standbys.offsets())
        for task in held.values():  # open stores know better than a checkpoint
            if task.subtopology.id in self._stateful_subtopologies:
                offsets[(task.subtopology.id, task.partition)] = offset_sum(task.stores)
        return MemberState(previous, offsets)

    async def _note_join_wait(self) -> None:
        """Say so while the first assignment is slow: the group may be waiting out a dead member's session."""
        began = time.monotonic()
        while True:
            await asyncio.sleep(JOIN_NOTICE_INTERVAL_S)
            log.info("waiting for group %s to assign partitions (%.0fs so far); the coordinator waits for every "
                     "member it knows, a crashed one until its session times out", self.config.application_id,
                     time.monotonic() - began)

    def _stop_rebalance_timers(self) -> None:
        if self._join_notice is not None:
            self._join_notice.cancel()
            self._join_notice = None
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        if self._cleanup is not None:
            self._cleanup.cancel()
            self._cleanup = None

    def _clean_state(self) -> None:
        """Delete the directories of tasks this worker has not used for ``state_cleanup_delay_ms``."""
        assert self.state is not None
        held = [*self.tasks.values(), *self._suspended.values()]
        in_use = {(t.subtopology.id, t.partition) for t in held} | set(self.standbys.tasks if self.standbys else ())
        delay_s = self.config.state_cleanup_delay_ms / 1000
        remove_unused(self.state.root, in_use, delay_s)
        if self._cleanup is not None:
            self._cleanup.cancel()
        self._cleanup = asyncio.get_running_loop().call_later(min(delay_s, CLEANUP_INTERVAL_S) or CLEANUP_INTERVAL_S,
                                                              self._clean_state)

    def _probing_rebalance(self) -> None:
        """Rejoin so that the leader assigns again: warm-up copies that caught up take their tasks over."""
        self._probe = None
        if self.consumer is not None and not self._stopping.is_set():
            log.info("probing rebalance: moving tasks whose warm-up copies caught up")
            self.consumer._coordinator.request_rejoin()

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """The eager protocol revokes everything: suspend running tasks, close the rest, report end offsets."""
        self._rebalance_began = time.monotonic()
        cluster = getattr(self, "cluster", None)
        if cluster is not None:
            cluster.mark_rebalancing()
        if self._probe is not None:  # the coming assignment decides again
            self._probe.cancel()
            self._probe = None
        assert self.assignor is not None
        self.assignor.latest = None
        for tp in revoked:
            self.metrics.forget_partition(tp.topic, tp.partition)
        gone = [self.tasks[t] for t in sorted({self._task_of[tp].task_id for tp in revoked if tp in self._task_of})]
        if gone:
            await self._suspend_tasks(gone)
        await self._refresh_end_offsets()

    async def _suspend_tasks(self, tasks: list[StreamTask]) -> None:
        """Commit and stop running tasks, keeping them and their open stores; close the others.

        A task whose last commit did not go through is closed too: only a task whose state
        is exactly its committed state may resume without a restore.
        """
        running = {t.task_id for t in tasks if t.task_id in self._runners}
        await self._stop_tasks(tasks)
        failed = await self._last_commit(tasks) if self._fatal is None else {t.task_id for t in tasks}
        failed |= {t.task_id for t in tasks if t.halted}  # being closed after a failed commit: never resumed
        keep = [t for t in tasks if t.task_id in running and t.task_id not in failed and not t.needs_commit]
        close = [t for t in tasks if t not in keep]
        for task in keep:
            task.suspend()
            self._suspended[task.task_id] = task
            self._forget(task)
        if keep:
            log.info("suspended tasks %s after revocation", ", ".join(t.task_id for t in keep))
        if close:
            log.info("closing tasks %s after revocation", ", ".join(t.task_id for t in close))
            await self._release_tasks(close, failed)

    async def _refresh_end_offsets(self) -> None:
        """Changelog end offsets of every stateful task, for the lags the assignor computes should this worker lead."""
        assert self.consumer is not None and self.assignor is not None
        partitions: dict[TaskId, list[TopicPartition]] = {}
        for sub in self.topology.subtopologies:
            if sub.id not in self._stateful_subtopologies:
                continue
            topics = sub.source_topics(self.config.application_id)
            count = max((self._partition_counts.get(t, 0) for t in topics), default=0)
            changelogs = [spec.changelog_topic(self.config.application_id) for spec in sub.stores if spec.logged]
            for partition in range(count):
                partitions[(sub.id, partition)] = [TopicPartition(c, partition) for c in changelogs]
        if not partitions:
            return
        try:
            ends = await asyncio.wait_for(self.consumer.end_offsets([tp for tps in partitions.values() for tp in tps]),
                                          END_OFFSETS_TIMEOUT_S)
        except (KafkaError, TimeoutError) as error:
            log.warning("changelog end offsets unknown (%r); lags count from what the members report", error)
            return
        self.assignor.end_offsets = {task: sum(ends.get(tp, 0) for tp in tps) for task, tps in partitions.items()}

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        assert self.consumer is not None and self.assignor is not None
        self.metrics.rebalances.inc()
        if self._join_notice is not None:
            self._join_notice.cancel()
            self._join_notice = None
        if self._rebalance_began is None:
            self._rebalance_began = time.monotonic()
        wanted: dict[str, tuple[int, int]] = {}
        for tp in assigned:
            sub = self._sub_of_topic[tp.topic]
            wanted[task_id_of(sub, tp.partition)] = (sub, tp.partition)
        log.info("assigned tasks %s", ", ".join(sorted(wanted)) or "none")
        info = self.assignor.latest  # None: the group assigned with range (a worker of an older version)
        if info is not None and info.standby:
            log.info("standby tasks %s%s", ", ".join(task_id_of(*t) for t in sorted(info.standby)),
                     f" (warming up {', '.join(task_id_of(*t) for t in sorted(info.warmup))})" if info.warmup else "")
        dropped = [self._suspended.pop(t) for t in sorted(self._suspended) if t not in wanted]
        if dropped:
            log.info("closing suspended tasks %s: assigned elsewhere", ", ".join(t.task_id for t in dropped))
            await self._close_tasks(dropped, commit=True)  # committed already: nothing to do but release
        returning = [self._suspended.pop(t) for t in sorted(wanted) if t in self._suspended]
        back = {task.task_id for task in returning}
        fresh = [w for t, w in sorted(wanted.items()) if t not in self.tasks and t not in back]
        reopened = await self._resume_tasks(returning, assigned)
        await self._open_tasks(sorted(fresh + reopened), assigned)  # standbys made active hand their stores over
        if self.standbys is not None:
            self.standbys.update(info.standby if info is not None else ())
        self._clean_state()
        cluster = getattr(self, "cluster", None)
        if cluster is not None and info is not None:
            cluster.update({ep: set(tasks) for ep, tasks in info.active_by_endpoint.items()},
                           {ep: set(tasks) for ep, tasks in info.standby_by_endpoint.items()})
        if info is not None and info.probe_after_ms is not None:
            self._probe = asyncio.get_running_loop().call_later(info.probe_after_ms / 1000, self._probing_rebalance)
        self._note_tasks_running()

    async def _resume_tasks(self, tasks: list[StreamTask], assigned: set[TopicPartition]) -> list[tuple[int, int]]:
        """Run suspended tasks again from their committed offsets, without restoring; returns those to reopen.

        A task somebody else committed for meanwhile (this worker missed a generation) has
        state that is behind: it is closed and reopened, which restores it.
        """
        if not tasks:
            return []
        assert self.consumer is not None
        pausing = [tp for task in tasks for tp in task.partitions if tp in assigned]
        self.consumer.pause(*pausing)  # before any await, as in _open_tasks
        self._paused.update(pausing)
        assert self.guarantee is not None
        reclaimed = await asyncio.gather(*(self.guarantee.reclaim(task) for task in tasks))
        committed = await self._committed([tp for task in tasks for tp in task.partitions])
        await self._seek_committed(committed)
        stale = []
        for task, ours in zip(tasks, reclaimed):
            mine = {tp: committed[tp] for tp in task.partitions}
            if not ours or not task.resumable({tp: offset for tp, (offset, _) in mine.items()}):
                stale.append(task)
                continue
            self.tasks[task.task_id] = task
            for tp in task.partitions:
                self._task_of[tp] = task
            self._start_runner(task)
        resumed = [t.task_id for t in tasks if t not in stale]
        if resumed:
            log.info("resumed tasks %s without restoring", ", ".join(resumed))
        if stale:
            log.info("tasks %s were taken over elsewhere since they were suspended; reopening them",
                     ", ".join(t.task_id for t in stale))
            await self._close_tasks(stale, commit=False)
        return [(t.subtopology.id, t.partition) for t in stale]

    async def _open_tasks(self, wanted: list[tuple[int, int]], assigned: set[TopicPartition]) -> None:
        """Create tasks with their stores paused, restore them in the background, then start them."""
        assert self.consumer is not None and self.state is not None
        # Before any await: no record of these partitions may be handed out until its task exists.
        opening = [tp for tp in assigned if (self._sub_of_topic[tp.topic], tp.partition) in wanted]
        self.consumer.pause(*opening)
        self._paused.update(opening)
        opened = []
        for sub_id, partition in wanted:
            subtopology = self.topology.subtopologies[sub_id]
            assert self.guarantee is not None
            producer = await self.guarantee.producer_for(task_id_of(sub_id, partition))
            stores = self.standbys.take((sub_id, partition)) if self.standbys is not None else None
            if stores is None:
                stores = self.state.open(subtopology, partition)
            task = StreamTask(subtopology, partition, self.config, producer, self._partition_counts, stores,
                              self.metrics, self._outputs)
            if self.global_updater is not None:
                task.global_stores = self.global_updater.readers
            self.tasks[task.task_id] = task
            for tp in task.partitions:
                self._task_of[tp] = task
            opened.append(task)
        for task in opened:
            self._starting[task.task_id] = asyncio.get_running_loop().create_task(
                self._restore_then_start(task), name=f"restore-{task.task_id}"
            )

    async def _restore_then_start(self, task: StreamTask) -> None:
        """Restore the stores, resume the committed stream time, initialize processors, then run."""
        assert self.state is not None and self.consumer is not None
        try:
            await self.state.restore(task.stores)
            committed = await self._committed(task.partitions)
            await self._seek_committed(committed)
            task.open_at(committed)
        except Exception as error:
            log.exception("opening task %s failed", task.task_id)
            self._fail(error)
            return
        finally:
            self._starting.pop(task.task_id, None)
        current = asyncio.current_task()
        if current is not None and current.cancelling():  # stopped, though a wait_for inside swallowed the cancel
            return
        self._start_runner(task)

    async def _seek_committed(self, committed: dict[TopicPartition, tuple[int, str | None]]) -> None:
        """Read on from exactly the committed offsets (the restored time belongs to them), paused partitions.

        A partition nothing was committed for yet starts at its beginning (auto_offset_reset), not
        where the consumer's fetches got to: a task reopened after a failed first commit would skip
        the records the failed copy fetched, whose outputs the aborted transaction took with it.
        """
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        for tp, (offset, _) in committed.items():
            if offset >= 0 and tp in assigned:
                self.consumer.seek(tp, offset)
        uncommitted = [tp for tp, (offset, _) in committed.items() if offset < 0 and tp in assigned]
        if uncommitted:
            await self.consumer.seek_to_beginning(*uncommitted)

    def _start_runner(self, task: StreamTask) -> None:
        """Run the task (its partitions are at its committed offsets), fetch for it."""
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        runner = asyncio.get_running_loop().create_task(task.runner(), name=f"task-{task.task_id}")
        runner.add_done_callback(self._task_finished)
        self._runners[task.task_id] = runner
        self._note_tasks_running()
        # Fetch for it now rather than when the poll loop next looks (up to a poll timeout later).
        for tp in task.partitions:
            if tp in self._paused and tp in assigned:
                self._resume(tp)

    async def _committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, tuple[int, str | None]]:
        """Committed (offset, metadata) of the group for ``partitions``, as the guarantee reads them."""
        assert self.guarantee is not None
        return await self.guarantee.committed(partitions)

    def _task_finished(self, runner: asyncio.Task[None]) -> None:
        if runner.cancelled():
            return
        error = runner.exception()
        task = self.tasks.get(runner.get_name().removeprefix("task-"))
        if task is not None and error is not None and self.guarantee is not None \
                and (isinstance(error, self.guarantee.fencing_errors) or producer_fenced(task.producer)):
            # This worker lost the task while it could not tell (a zombie): close it, do not stop.
            task.halted = True  # no commit tries it again
            closing = asyncio.get_running_loop().create_task(self._recover([(task, error)]))
            self._closing_fenced.add(closing)
            closing.add_done_callback(self._closing_fenced.discard)
        elif error is not None:
            log.error("task %s failed: %s", runner.get_name(), error)
            self._fail(error)

    async def _close_tasks(self, tasks: list[StreamTask], commit: bool) -> None:
        """Stop the tasks between batches, commit their work if asked, release stores and producers."""
        await self._stop_tasks(tasks)
        failed = await self._last_commit(tasks) if commit else {t.task_id for t in tasks}
        await self._release_tasks(tasks, failed)

    async def _stop_tasks(self, tasks: list[StreamTask]) -> None:
        """Cancel restores and stop runners, each runner between two batches."""
        for task in tasks:
            starting = self._starting.pop(task.task_id, None)
            if starting is not None:
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
            runner = self._runners.pop(task.task_id, None)
            if runner is not None:
                async with task.lock:
                    task.stop_running()
                await asyncio.gather(runner, return_exceptions=True)
        self.metrics.tasks_running.set(len(self._runners))

    async def _last_commit(self, tasks: list[StreamTask]) -> set[str]:
        """Commit stopped tasks; returns the ids of those whose work could not be committed."""
        try:
            return {t.task_id for t, _ in await self.commit(tasks)}
        except (KafkaError, StreamerError) as error:
            log.warning("last commit of tasks failed; their uncommitted work will be redone: %r", error)
            return {t.task_id for t in tasks}

    async def _release_tasks(self, tasks: list[StreamTask], failed: set[str]) -> None:
        """Drop what failed tasks did not commit, release producers, checkpoint and close the stores."""
        assert self.guarantee is not None and self.state is not None
        for task in tasks:
            async with task.lock:  # a commit still at work on the task ends first; none starts after
                if task.released:  # closed meanwhile by a rebalance, or by the recovery of a failed commit
                    continue
                task.released = True
                task.halted = True
                if task.task_id in failed:
                    task.abandon()
                await self.guarantee.release(task, failed=task.task_id in failed)
                if self.config.state_store == "rocksdb":
                    write_checkpoint(self.state.root / task.task_id, task.stores)
                task.close()
            self._forget(task)

    def _forget(self, task: StreamTask) -> None:
        """The worker no longer runs the task: no fetched records go to it."""
        self.tasks.pop(task.task_id, None)
        for tp in task.partitions:
            self._task_of.pop(tp, None)
            self._paused.discard(tp)

    def _note_tasks_running(self) -> None:
        """Tasks running now; once every assigned task runs, the rebalance's pause is over."""
        self.metrics.tasks_running.set(len(self._runners))
        if self._rebalance_began is not None and not self._starting:
            self.metrics.rebalance_pause.observe(time.monotonic() - self._rebalance_began)
            self._rebalance_began = None
