"""Runs one task's processors over a batch, in topological order.

Each pass starts at one node (a source for input batches, any node for punctuator
output) and visits every later node once, handing it all records its parents forwarded
in this pass. Where branches of one batch meet again (merge), records are put back in
input-offset order so that per-key order survives the fan-out.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Callable, Sequence, TypeVar

from streamer.errors import TopologyError
from streamer.processors.api import Processor, ProcessorContext

_by_offset = attrgetter("offset")
T = TypeVar("T")
P = TypeVar("P", bound=Processor)


class TaskGraph:
    """The processors of one task and the edges between them, by position.

    ``processors`` must be in topological order: every child comes after its parents.
    """

    def __init__(self, processors: Sequence[Processor], children: Sequence[Sequence[int]]) -> None:
        self.processors = list(processors)
        self.children = [tuple(c) for c in children]
        for index, kids in enumerate(self.children):
            if any(child <= index for child in kids):
                raise TopologyError(f"processor {self.processors[index].name!r} has a child before it")
        self._index = {p.name: i for i, p in enumerate(self.processors)}
        #: the processor whose code runs now (init, process or a punctuator): schedules belong to it
        self.current = ""

    def index_of(self, name: str) -> int:
        return self._index[name]

    def processor_as(self, index: int, kind: type[P]) -> P:
        """The processor at ``index``, which the compiled topology places there as a ``kind`` (a source, a sink)."""
        processor = self.processors[index]
        if not isinstance(processor, kind):
            found = type(processor).__name__
            raise TopologyError(f"processor {processor.name!r} is a {found} where the topology needs a {kind.__name__}")
        return processor

    def init(self, context: ProcessorContext) -> None:
        for processor in self.processors:
            self.current = processor.name
            processor.init(context)
        self.current = ""

    def close(self) -> None:
        for processor in self.processors:
            processor.close()

    def call_as(self, node: str, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` (a punctuator) on behalf of ``node``, so what it schedules belongs to ``node``."""
        previous, self.current = self.current, node
        try:
            return function(*args)
        finally:
            self.current = previous

    async def run(self, start: int, records: list[Any]) -> None:
        """Process ``records`` at node ``start`` and everything they reach downstream."""
        inputs: list[list[Any] | None] = [None] * len(self.processors)
        inputs[start] = records
        await self._pass(start, inputs, [False] * len(self.processors))

    async def run_after(self, start: int, records: list[Any]) -> None:
        """Hand ``records`` to the children of node ``start`` (as its output) and run them downstream."""
        inputs: list[list[Any] | None] = [None] * len(self.processors)
        merged = [False] * len(self.processors)
        self._forward(start, records, inputs, merged)
        await self._pass(start + 1, inputs, merged)

    async def forward_from(self, name: str, records: list[Any]) -> None:
        """Send records a processor emitted outside ``process`` (a punctuator) to its children, in one pass."""
        await self.run_after(self._index[name], records)

    async def _pass(self, first: int, inputs: list[list[Any] | None], merged: list[bool]) -> None:
        processors = self.processors
        for index in range(first, len(processors)):
            batch = inputs[index]
            if not batch:
                continue
            if merged[index]:
                batch.sort(key=_by_offset)
            processor = processors[index]
            self.current = processor.name
            out = await processor.process(batch) if processor.is_async else processor.process(batch)
            if out:
                self._forward(index, out, inputs, merged)
        self.current = ""

    def _forward(self, index: int, out: Any, inputs: list[list[Any] | None], merged: list[bool]) -> None:
        kids = self.children[index]
        if not kids:
            return
        pairs = zip(kids, out) if self.processors[index].routes else ((child, out) for child in kids)
        for child, forwarded in pairs:
            if not forwarded:
                continue
            existing = inputs[child]
            if existing is None:
                inputs[child] = forwarded
            else:
                inputs[child] = existing + forwarded
                merged[child] = True
