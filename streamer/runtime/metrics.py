"""A worker's Prometheus metrics (see docs/operations.md, "Metrics and health", for the table).

Every worker has its own CollectorRegistry, not prometheus-client's global one, so a
process can run several workers (as the tests do) without their series colliding.
The runtime reports per batch, never per record: one counter increment per fetched
batch, per produce batch, per commit; only rare events (a skipped or dropped record)
are counted one by one. Children of labelled metrics are cached, so the hot path pays
one dict lookup and one locked add.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streamer.errors import DeserializationError, StateStoreError
from streamer.state.store import KeyValueStore

#: End-to-end latency buckets: from a millisecond (a fast pipeline) to minutes (a restore, a backlog).
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
PUNCTUATION_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)
#: Store sizes are read from the stores at a scrape, at most this often (RocksDB properties are cheap, not free).
STORE_SIZES_EVERY_S = 5.0
COMMIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WorkerMetrics:
    """The metric families of one worker and the per-batch calls the runtime makes on them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records_consumed = Counter("streamer_records_consumed_total", "Input records processed by tasks.",
                                        ["topic", "partition"], registry=r)
        self.records_produced = Counter("streamer_records_produced_total",
                                        "Records handed to the producer: sinks, repartition, changelogs, dead letters.",
                                        ["topic"], registry=r)
        self.consumer_lag = Gauge("streamer_consumer_lag_records",
                                  "Records of an input partition not yet processed: behind the log end, "
                                  "or behind the last stable offset under exactly-once.",
                                  ["topic", "partition"], registry=r)
        self.end_to_end_latency = Histogram("streamer_end_to_end_latency_seconds",
                                            "Wall clock minus record timestamp when a sink sends it, one sample "
                                            "per sent batch (its newest record).",
                                            ["topic"], buckets=LATENCY_BUCKETS, registry=r)
        self.commit_latency = Histogram("streamer_commit_latency_seconds",
                                        "Time of one commit of the worker's tasks (flush, offsets, transactions).",
                                        buckets=COMMIT_BUCKETS, registry=r)
        self.commits = Counter("streamer_commits_total", "Commits of the worker's tasks that made progress.",
                               registry=r)
        self.transaction_aborts = Counter("streamer_transaction_aborts_total",
                                          "Task transactions that failed and were aborted (exactly-once).",
                                          registry=r)
        self.rebalances = Counter("streamer_rebalances_total", "Partition assignments the worker received.",
                                  registry=r)
        self.rebalance_pause = Histogram("streamer_rebalance_pause_seconds",
                                         "From revocation (or assignment) until every assigned task runs again.",
                                         buckets=COMMIT_BUCKETS, registry=r)
        self.restore_records = Counter("streamer_restore_records_total", "Changelog records restored into a store.",
                                       ["store"], registry=r)
        self.restore_to_restore = Counter("streamer_restore_records_to_restore_total",
                                          "Changelog records (end minus start offset) found to restore into a store "
                                          "when each of its partitions' restores began.", ["store"], registry=r)
        self.restore_remaining = Gauge("streamer_restore_remaining_records",
                                       "Changelog records of the store still to restore; 0 once restored.",
                                       ["store"], registry=r)
        self.standby_records = Counter("streamer_standby_records_total",
                                       "Changelog records applied to a standby task's store (a warm copy).",
                                       ["task", "store"], registry=r)
        self.standby_lag = Gauge("streamer_standby_lag_records",
                                 "Changelog records a standby task's store has not applied yet: behind the log end, "
                                 "or behind the last stable offset under exactly-once.", ["task", "store"], registry=r)
        self.records_dropped = Counter("streamer_records_dropped_total",
                                       "Records a processor dropped on purpose (a late record for a closed window).",
                                       ["processor", "reason"], registry=r)
        self.records_skipped = Counter("streamer_records_skipped_total",
                                       "Records skipped by the error handler (log_and_continue or dead_letter).",
                                       ["reason", "error"], registry=r)
        self.records_dead_lettered = Counter("streamer_records_dead_lettered_total",
                                             "Records written to the dead-letter topic.", ["reason"], registry=r)
        self.records_failed = Counter("streamer_records_failed_total",
                                      "Records that stopped their task under the fail policy (or for an internal "
                                      "topic the broker refuses).", ["reason", "error"], registry=r)
        self.punctuations = Counter("streamer_punctuations_total", "Punctuator runs.", ["task", "processor", "type"],
                                    registry=r)
        self.punctuation_time = Histogram("streamer_punctuation_seconds",
                                          "Time of one punctuator run, forwarding its records downstream included.",
                                          ["task", "processor"], buckets=PUNCTUATION_BUCKETS, registry=r)
        self.tasks_running = Gauge("streamer_tasks_running", "Tasks of this worker that are restored and processing.",
                                   registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """The labelled child of ``metric``, cached: ``labels()`` costs a lock and a tuple build per call."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def consumed(self, topic: str, partition: int, count: int) -> None:
        self._child(self.records_consumed, topic, str(partition)).inc(count)

    def produced(self, topic: str, count: int) -> None:
        self._child(self.records_produced, topic).inc(count)

    def sink_sent(self, topic: str, timestamps: list[int]) -> None:
        """Sample end-to-end latency once for a batch a sink sends: its newest record's age."""
        if timestamps:
            age = time.time() - max(timestamps) / 1000
            self._child(self.end_to_end_latency, topic).observe(max(age, 0.0))

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self._child(self.consumer_lag, topic, str(partition)).set(lag)

    def forget_partition(self, topic: str, partition: int) -> None:
        """A revoked partition's lag is another worker's to report now."""
        labels = (topic, str(partition))
        if self._children.pop((id(self.consumer_lag), *labels), None) is not None:
            self.consumer_lag.remove(*labels)

    def restored(self, store: str, count: int) -> None:
        self._child(self.restore_records, store).inc(count)

    def restore_began(self, store: str, to_restore: int) -> None:
        self._child(self.restore_to_restore, store).inc(to_restore)

    def set_restore_remaining(self, store: str, remaining: int) -> None:
        self._child(self.restore_remaining, store).set(remaining)

    def standby_applied(self, task: str, store: str, count: int) -> None:
        self._child(self.standby_records, task, store).inc(count)

    def set_standby_lag(self, task: str, store: str, lag: int) -> None:
        self._child(self.standby_lag, task, store).set(lag)

    def forget_standby(self, task: str, stores: Iterable[str]) -> None:
        """A standby closed or made active here: its series would only mislead (an active task reports restores)."""
        for store in stores:
            for metric in (self.standby_records, self.standby_lag):
                if self._children.pop((id(metric), task, store), None) is not None:
                    metric.remove(task, store)

    def skipped(self, error: BaseException, dead_lettered: bool) -> None:
        """The error handler skipped a record (and wrote it to the dead-letter topic if ``dead_lettered``)."""
        reason = _reason(error)
        self._child(self.records_skipped, reason, type(error).__name__).inc()
        if dead_lettered:
            self._child(self.records_dead_lettered, reason).inc()

    def failed(self, error: BaseException) -> None:
        """A record stopped its task: the handler's policy is fail."""
        self._child(self.records_failed, _reason(error), type(error).__name__).inc()

    def production_error(self, outcome: str, error: BaseException) -> None:
        """A record the broker would refuse or refused: ``outcome`` skipped, dead_lettered or failed."""
        labels = ("production_error", type(error).__name__)
        if outcome == "failed":
            self._child(self.records_failed, *labels).inc()
            return
        self._child(self.records_skipped, *labels).inc()
        if outcome == "dead_lettered":
            self._child(self.records_dead_lettered, "production_error").inc()

    def dropped(self, processor: str, reason: str, dead_lettered: bool) -> None:
        """``reason`` is ``kind: details`` (``late: every window of timestamp 5 closed ...``): the label is the kind.

        The details name timestamps and stream times, a new label value per record: Prometheus
        would keep a series for each.
        """
        self._child(self.records_dropped, processor, reason.split(":", 1)[0].strip()).inc()
        if dead_lettered:
            self._child(self.records_dead_lettered, "dropped").inc()

    def punctuated(self, task: str, processor: str, kind: str, seconds: float) -> None:
        self._child(self.punctuations, task, processor, kind).inc()
        self._child(self.punctuation_time, task, processor).observe(seconds)

    def watch_stores(self, tasks: Callable[[], Iterable[StoreOwner]]) -> None:
        """Report the stores of ``tasks()`` (the worker's tasks) as size estimates, at scrape time."""
        self.registry.register(_StoreSizes(tasks))

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format, as /metrics serves it."""
        return generate_latest(self.registry)


def _reason(error: BaseException) -> str:
    """Which handler judged a bad record: the reason label of the skipped and failed counters."""
    return "deserialization_error" if isinstance(error, DeserializationError) else "processing_error"


class _Caches(Protocol):
    @property
    def caches(self) -> Mapping[str, Any]: ...


class StoreOwner(Protocol):
    """A task as the store sizes see it: its id and its stores' write caches (each with a ``store``)."""

    @property
    def task_id(self) -> str: ...

    @property
    def stores(self) -> _Caches: ...


class _StoreSizes(Collector):
    """Size estimates of every store of the worker's tasks, read when Prometheus scrapes, not per record.

    Keys from ``approximate_count`` (RocksDB's estimate-num-keys, a memory store's length),
    bytes where the store measures them cheaply (RocksDB: live SST data plus memtables; a
    memory store would have to add up every value). Cached for STORE_SIZES_EVERY_S.
    """

    def __init__(self, tasks: Callable[[], Iterable[StoreOwner]], clock: Callable[[], float] = time.monotonic) -> None:
        self.tasks = tasks
        self.clock = clock
        self._measured: tuple[float, list[GaugeMetricFamily]] | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return self._families()  # the names, without reading any store at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        if self._measured is None or now - self._measured[0] >= STORE_SIZES_EVERY_S:
            self._measured = (now, self._measure())
        return iter(self._measured[1])

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily("streamer_store_keys", "Keys a task's store holds (an estimate for RocksDB).",
                                  labels=["task", "store"]),
                GaugeMetricFamily("streamer_store_bytes", "Bytes a task's RocksDB store holds: live data in its SST "
                                  "files plus its memtables (RocksDB's estimates).", labels=["task", "store"])]

    def _measure(self) -> list[GaugeMetricFamily]:
        keys, size = families = self._families()
        for task in list(self.tasks()):
            for name, cache in task.stores.caches.items():
                store: KeyValueStore = cache.store
                measure = getattr(getattr(store, "inner", store), "approximate_bytes", None)  # a segmented store's
                try:
                    keys.add_metric([task.task_id, name], store.approximate_count())
                    if measure is not None:
                        size.add_metric([task.task_id, name], measure())
                except StateStoreError:
                    continue  # closed as its task was: the next scrape no longer lists it
        return families
