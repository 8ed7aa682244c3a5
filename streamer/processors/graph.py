"""Runs one task's processors over a batch, in topological order.

Each pass starts at one node (a source for input batches, any node for punctuator
output) and visits every later node once, handing it all records its parents forwarded
in this pass. Where branches of one batch meet again (merge), records are put back in
input-offset order so that per-key order survives the fan-out.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Sequence

from streamer.errors import TopologyError
from streamer.processors.api import Processor, ProcessorContext

_by_offset = attrgetter("offset")


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

    def index_of(self, name: str) -> int:
        return self._index[name]

    def init(self, context: ProcessorContext) -> None:
        for processor in self.processors:
            context.initializing(processor.name)
            processor.init(context)

    def close(self) -> None:
        for processor in self.processors:
            processor.close()

    async def run(self, start: int, records: list[Any]) -> None:
        """Process ``records`` at node ``start`` and everything they reach downstream."""
        inputs: list[list[Any] | None] = [None] * len(self.processors)
        merged = [False] * len(self.processors)
        inputs[start] = records
        for index in range(start, len(self.processors)):
            batch = inputs[index]
            if not batch:
                continue
            if merged[index]:
                batch.sort(key=_by_offset)
            processor = self.processors[index]
            out = await processor.process(batch) if processor.is_async else processor.process(batch)
            kids = self.children[index]
            if not kids or not out:
                continue
            pairs = zip(kids, out) if processor.routes else ((child, out) for child in kids)
            for child, forwarded in pairs:
                if not forwarded:
                    continue
                existing = inputs[child]
                if existing is None:
                    inputs[child] = forwarded
                else:
                    inputs[child] = existing + forwarded
                    merged[child] = True

    async def forward_from(self, name: str, records: list[Any]) -> None:
        """Send records a processor emitted outside ``process`` (a punctuator) to its children."""
        index = self._index[name]
        for child in self.children[index]:
            await self.run(child, list(records))
