"""TopologyTestDriver: run a topology in-process, without a broker, for users' unit tests.

The driver builds one task per sub-topology (partition 0 of every input) with the same
processors, context, stores, time and error handling as the real runtime, and replaces
Kafka by in-memory topics. Each piped record (or batch, ``pipe_batch``) is processed at
once; whatever it writes to a repartition topic is fed to the reading sub-topology
before ``pipe`` returns, and then the driver commits (stores, stream time and processor
metadata), so outputs and state are visible to the test immediately. A task reading
several topics processes them in timestamp order, as in the runtime.

Global tables are memory stores shared by all tasks, like a worker's; a record piped to
a global table's topic updates the table at once (Kafka Streams' driver does the same).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Awaitable, Callable, Iterable, Mapping

from streamer.config import StreamerConfig
from streamer.errors import SerializationError, StreamerError
from streamer.processors.api import PunctuationType
from streamer.record import Headers
from streamer.runtime.global_store import GlobalStore
from streamer.runtime.store_views import SessionStoreView, StoreView, WindowStoreView, view_of
from streamer.runtime.task_core import task_id_of
from streamer.runtime.task_stores import TaskStores, open_task_stores
from streamer.serde import Serde, SerdeLike
from streamer.testing._loop import SyncRunner
from streamer.testing.output import OutputRecord, TopicSerdes
from streamer.testing.task import DriverTask
from streamer.testing.topics import TopicLogs, require_bytes
from streamer.topology.describe import describe_topology
from streamer.topology.topology import SubTopology, Topology, internal_topic_name

#: An input row for ``pipe_many`` and ``pipe_batch``: (key, value), (key, value, timestamp)
#: or (key, value, timestamp, headers).
InputRow = tuple[Any, Any] | tuple[Any, Any, int | None] | tuple[Any, Any, int | None, Headers | None]


class TopologyTestDriver:
    """Feeds records to a topology and lets the test read its outputs, stores and time.

    ``config`` takes any ``StreamerConfig`` setting, e.g.
    ``processing_error_handler="dead_letter"``. ``partitions`` gives partition counts of
    topics the topology writes (default one each), which custom partitioners see.
    """

    def __init__(
        self,
        topology: Topology,
        application_id: str = "test-app",
        initial_wall_clock_ms: int = 0,
        *,
        partitions: Mapping[str, int] | None = None,
        **config: Any,
    ) -> None:
        self.config = StreamerConfig(application_id=application_id).with_overrides(config)
        self.topology = topology
        self.wall_clock_ms = initial_wall_clock_ms
        self._closed = False
        self._runner = SyncRunner()
        self._logs = TopicLogs(self._partition_counts(partitions or {}))
        self._tasks: list[DriverTask] = []
        #: global table topic -> its store, shared by every task
        self._globals: dict[str, GlobalStore] = {}
        try:
            global_dir = Path(self.config.state_dir, self.config.application_id, "global")
            for spec in topology.global_stores:
                self._globals[spec.topic] = GlobalStore(spec, global_dir, "memory")
            readers = {store.name: store.reader for store in self._globals.values()}
            for sub in topology.subtopologies:
                self._tasks.append(DriverTask(sub, self.config, self._open_stores(sub), self._logs,
                                              lambda: self.wall_clock_ms, readers))
        except BaseException:
            self.close()
            raise
        #: internal topic -> the task and source node that read it, and how far it has been fed
        self._readers = self._internal_readers()
        self._fed = {topic: 0 for topic in self._readers}
        #: topic -> how many of its messages the test has read
        self._read: dict[str, int] = {}
        self._serdes = TopicSerdes(self._tasks, application_id, self.config.effective_dead_letter_topic)

    def _internal_readers(self) -> dict[str, tuple[DriverTask, int]]:
        app = self.config.application_id
        internal = {internal_topic_name(app, spec.suffix) for spec in self.topology.repartition_topics}
        return {
            topic: (task, index) for task in self._tasks for topic, index in task.sources.items() if topic in internal
        }

    def _partition_counts(self, given: Mapping[str, int]) -> dict[str, int]:
        app = self.config.application_id
        counts = {internal_topic_name(app, t.suffix): t.partitions or 1 for t in self.topology.repartition_topics}
        counts.update(given)
        return counts

    def _open_stores(self, sub: SubTopology) -> TaskStores:
        """Memory stores (they start empty and never touch the disk), laid out and cached as the runtime's."""
        directory = Path(self.config.state_dir, self.config.application_id, task_id_of(sub.id, 0))
        return open_task_stores(sub, 0, directory, "memory", self.config.application_id)

    # -- input ----------------------------------------------------------------------------

    def pipe(self, topic: str, key: Any, value: Any, timestamp: int | None = None,
             headers: Headers | None = None) -> None:
        """Serialize key and value with the source's serdes and process the record."""
        self.pipe_batch(topic, [(key, value, timestamp, headers)])

    def pipe_many(self, topic: str, rows: Iterable[InputRow]) -> None:
        """``pipe`` each ``(key, value)`` or ``(key, value, timestamp)`` in order, each a batch of its own."""
        for row in rows:
            self.pipe(topic, *row)

    def pipe_batch(self, topic: str, rows: Iterable[InputRow]) -> None:
        """Process the rows as one fetched batch, as the runtime would a fetch of several records.

        Processors see them in one ``process`` call, stream time advances per record
        within it (``context.stream_time_of``), and the driver commits once at the end.
        """
        if topic in self._globals:
            spec = self._globals[topic].spec.store
            self._update_global(topic, [(_serialize(spec.key_serde, row[0], "key", topic),
                                         _serialize(spec.value_serde, row[1], "value", topic), *row[2:])
                                        for row in rows])
            return
        task, index = self._input(topic)
        source = task.source_processors[index]
        encoded = [
            (_serialize(source.key_serde, row[0], "key", topic), _serialize(source.value_serde, row[1], "value", topic),
             *row[2:])
            for row in rows
        ]
        self._process_input(topic, task, encoded)

    def pipe_raw(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int | None = None,
                 headers: Headers | None = None) -> None:
        """Process a record given as bytes, e.g. one the source's serde cannot read."""
        if topic in self._globals:
            self._update_global(topic, [(key, value, timestamp, headers)])
            return
        task, _ = self._input(topic)
        self._process_input(topic, task, [(key, value, timestamp, headers)])

    def _input(self, topic: str) -> tuple[DriverTask, int]:
        self._check_open()
        for task in self._tasks:
            index = task.source_of(topic)
            if index is not None and topic not in self._readers:
                self._serdes.add_source(topic, task.source_processors[index])
                return task, index
        inputs = sorted(({t for task in self._tasks for t in task.sources} - set(self._readers)) | set(self._globals))
        patterns = [p for task in self._tasks for p in task.source_patterns]
        raise StreamerError(
            f"the topology does not read topic {topic!r}; its input topics are {inputs}"
            + (f" and those matching {patterns}" if patterns else "")
        )

    def _process_input(self, topic: str, task: DriverTask, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        messages = []
        for key, value, *rest in rows:
            timestamp = rest[0] if rest and rest[0] is not None else self.wall_clock_ms
            headers = rest[1] if len(rest) > 1 else None
            messages.append(self._logs.append(topic, key, value, timestamp, headers, 0))
        self._transaction(lambda: task.process_messages(messages))

    def _update_global(self, topic: str, rows: list[tuple[Any, ...]]) -> None:
        """Write the records to the topic and apply them to its global table before returning."""
        self._check_open()
        store = self._globals[topic]
        for key, value, *rest in rows:
            timestamp = rest[0] if rest and rest[0] is not None else self.wall_clock_ms
            message = self._logs.append(topic, key, value, timestamp, rest[1] if len(rest) > 1 else None, None)
            store.apply(message.partition, [message])

    # -- time -----------------------------------------------------------------------------

    def advance_wall_clock(self, ms: int) -> None:
        """Move the wall clock forward and run the wall-clock punctuators that became due."""
        self._check_open()
        if ms < 0:
            raise ValueError(f"the wall clock only moves forward; got {ms} ms")
        self.wall_clock_ms += ms

        async def punctuate_all() -> None:
            for task in self._tasks:
                await task.punctuate(PunctuationType.WALL_CLOCK_TIME, self.wall_clock_ms)
                await task.process_ready()  # input that waited out max_task_idle_ms

        self._transaction(punctuate_all)

    # -- processing -----------------------------------------------------------------------

    def _transaction(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` and everything it sends through repartition topics, then commit.

        If it raises (the ``fail`` error policy), its outputs and state changes are
        discarded, as an aborted batch would be, and the error reaches the test.
        """
        mark = self._logs.mark()
        try:
            self._runner.run(self._until_idle(work))
        except BaseException:
            self._logs.rollback(mark)
            for topic in self._fed:
                self._fed[topic] = min(self._fed[topic], len(self._logs.messages(topic)))
            for task in self._tasks:
                task.abandon()
            raise
        for task in self._tasks:
            task.commit()

    async def _until_idle(self, work: Callable[[], Awaitable[None]]) -> None:
        await work()
        progressed = True
        while progressed:
            progressed = False
            for topic, (task, _) in self._readers.items():
                log = self._logs.messages(topic)
                while self._fed[topic] < len(log):
                    start = self._fed[topic]
                    end = start + 1  # one batch per run of messages of the same partition, as a fetch
                    while end < len(log) and log[end].partition == log[start].partition:
                        end += 1
                    self._fed[topic] = end
                    await task.process_messages(log[start:end])
                    progressed = True

    # -- output ---------------------------------------------------------------------------

    def read_records(self, topic: str, *, key_serde: SerdeLike = None,
                     value_serde: SerdeLike = None) -> list[OutputRecord]:
        """The records written to ``topic`` since the last read, deserialized; they count as read."""
        self._check_open()
        log = self._logs.messages(topic)
        if not log and not self._serdes.knows(topic):
            raise StreamerError(
                f"the topology never writes topic {topic!r}; topics it writes or reads: {self._serdes.known_topics()}"
            )
        start = self._read.get(topic, 0)
        if start == len(log):
            return []
        load_key, load_value = (s.deserialize for s in self._serdes.for_reading(topic, key_serde, value_serde))
        records = [
            OutputRecord(topic, load_key(m.key), load_value(m.value), m.timestamp, m.headers, m.partition, m.offset)
            for m in log[start:]
        ]
        self._read[topic] = len(log)
        return records

    def read_output(self, topic: str, *, key_serde: SerdeLike = None,
                    value_serde: SerdeLike = None) -> list[tuple[Any, Any]]:
        """``(key, value)`` of each record written to ``topic`` since the last read."""
        return [(r.key, r.value) for r in self.read_records(topic, key_serde=key_serde, value_serde=value_serde)]

    def read_latest(self, topic: str, *, key_serde: SerdeLike = None,
                    value_serde: SerdeLike = None) -> dict[Any, Any]:
        """The last value per key among the unread records; a None value (tombstone) removes the key."""
        latest: dict[Any, Any] = {}
        for key, value in self.read_output(topic, key_serde=key_serde, value_serde=value_serde):
            if value is None:
                latest.pop(key, None)
            else:
                latest[key] = value
        return latest

    def store(self, name: str) -> StoreView | WindowStoreView | SessionStoreView:
        """A read-only view of a state store, with keys and values deserialized.

        Window stores (windowed aggregations) give a ``WindowStoreView`` (``fetch(key,
        time_from, time_to)`` by window start), session stores a ``SessionStoreView``.
        """
        self._check_open()
        for store in self._globals.values():
            if store.name == name:
                return store.view()
        for task in self._tasks:
            for spec in task.subtopology.stores:
                if spec.name == name:
                    return view_of(spec, task.stores[name])
        names = sorted([spec.name for spec in self.topology.stores()] + [g.name for g in self.topology.global_stores])
        raise StreamerError(f"the topology has no store {name!r}; its stores are {names}")

    @property
    def dropped(self) -> dict[str, int]:
        """Processor name -> records it dropped on purpose (late records, say) so far."""
        counts: dict[str, int] = {}
        for task in self._tasks:
            for processor, count in task.dropped.items():
                counts[processor] = counts.get(processor, 0) + count
        return counts

    def stream_time(self, topic: str) -> int:
        """Stream time (ms) of the task that reads input ``topic``; -1 before its first record."""
        return self._input(topic)[0].stream_time

    def describe(self) -> str:
        """The topology's description with this driver's application id in internal topic names."""
        return describe_topology(self.topology, self.config.application_id)

    # -- lifecycle ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StreamerError("the test driver is closed")

    def close(self) -> None:
        """Close processors and stores and release the driver's event loop; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            for task in self._tasks:
                task.close()
            for store in self._globals.values():
                store.close()
        finally:
            self._runner.close()

    def __enter__(self) -> TopologyTestDriver:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _serialize(serde: Serde, obj: Any, what: str, topic: str) -> bytes | None:
    """Serialize as a producer would; a serde that yields no bytes is the test's mistake, said early."""
    try:
        data = serde.serialize(obj)
    except Exception as error:
        raise SerializationError(f"cannot serialize {what} {obj!r} for topic {topic!r}: {error!r}") from error
    require_bytes(topic, what, data, f"the source's {what} serde did not make bytes (the default serde passes "
                  f"values as they are); pipe bytes, or give the source a {what}_serde")
    return data
