"""The processor API for users: a record at a time, forwarding, stores and punctuators.

Users subclass ``RecordProcessor``; the task graph runs it through ``UserProcessorNode``,
which feeds it the batch record by record and collects what it forwards.
"""

from __future__ import annotations

from typing import Any, Callable

from streamer.errors import TopologyError
from streamer.processors.api import Cancellable, Processor, ProcessorContext, PunctuationType
from streamer.record import Record
from streamer.serde import Serde
from streamer.state.typed_store import TypedStore


class RecordProcessor:
    """Subclass and override ``process``; optionally ``init`` and ``close``.

    In ``init`` the processor may fetch its stores (``self.get_store(name)``) and
    schedule punctuators (``self.schedule(...)``, also from ``process``); ``forward``
    sends a record downstream, from ``process`` or from a punctuator. ``init`` runs once
    the task's stores are restored.
    """

    _node: UserProcessorNode

    def init(self) -> None:
        """Called once per task before the first record."""

    def process(self, record: Record) -> None:
        raise NotImplementedError("RecordProcessor subclasses must implement process(record)")

    def close(self) -> None:
        """Called when the task closes."""

    def forward(self, record: Record) -> None:
        self._node.outbox.append(record)

    def get_store(self, name: str) -> TypedStore:
        return self._node.typed_store(name)

    def schedule(self, interval_ms: int, kind: PunctuationType, callback: Callable[[int], None]) -> Cancellable:
        """Call ``callback(timestamp)`` every ``interval_ms`` of stream time or wall-clock time.

        What the callback forwards goes downstream of this processor; ``.cancel()`` on the
        returned handle stops it.
        """
        return self._node.context.schedule(interval_ms, kind, self._node.punctuator(callback))

    def schedule_cron(self, expression: str, callback: Callable[[int], None]) -> Cancellable:
        """Call ``callback(timestamp)`` at each wall-clock minute matching a cron expression."""
        return self._node.context.schedule_cron(expression, self._node.punctuator(callback))

    @property
    def context(self) -> ProcessorContext:
        return self._node.context

    @property
    def stream_time(self) -> int:
        """The task's stream time as of the record being processed (in a punctuator: the task's)."""
        node = self._node
        record = node.current
        return node.context.stream_time if record is None else node.context.stream_time_of(record)


class UserProcessorNode(Processor):
    """Adapts a ``RecordProcessor`` to the batch interface of the task graph."""

    def __init__(self, name: str, factory: Callable[[], RecordProcessor],
                 stores: dict[str, tuple[Serde, Serde, bool]]) -> None:
        """``stores``: name -> (key serde, value serde, whether values carry timestamps)."""
        super().__init__(name)
        self.factory = factory
        self.store_serdes = stores
        self.outbox: list[Record] = []
        self.user: RecordProcessor | None = None
        #: the record ``process`` is at, for the user's per-record stream time
        self.current: Record | None = None

    def typed_store(self, name: str) -> TypedStore:
        if name not in self.store_serdes:
            raise TopologyError(
                f"processor {self.name} uses store {name!r} without declaring it: pass stores=[{name!r}] to process()"
            )
        key_serde, value_serde, timestamped = self.store_serdes[name]
        return TypedStore(self.context.get_store(name), key_serde, value_serde, timestamped)

    def punctuator(self, callback: Callable[[int], None]) -> Callable[[int], list[Record]]:
        def punctuate(timestamp: int) -> list[Record]:
            self.outbox = []
            callback(timestamp)
            return self.outbox

        return punctuate

    def init(self, context: Any) -> None:
        super().init(context)
        user = self.factory()
        if not isinstance(user, RecordProcessor):
            raise TopologyError(f"process() needs a RecordProcessor subclass (or a factory of one), got {user!r}")
        user._node = self
        self.user = user
        user.init()

    def process(self, records: list[Record]) -> list[Record]:
        user = self.user
        if user is None:
            raise TopologyError(f"processor {self.name} was given records before init(); the task opens it first")
        out: list[Record] = []
        self.outbox = out
        for record in records:
            self.current = record
            try:
                user.process(record)
            except Exception as error:
                self.context.record_error(self.name, record, error)
        self.current = None
        self.outbox = []
        return out

    def close(self) -> None:
        if self.user is not None:
            self.user.close()
