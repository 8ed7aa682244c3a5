"""Record-at-a-time operations without state, each a loop over the batch.

Every user call sits inside ``try`` (free in CPython 3.11 when nothing raises) so a
record that makes user code raise goes to the error handler and the rest of the batch
goes on as configured.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable

from streamer.processors.api import Processor
from streamer.record import Record


class FunctionProcessor(Processor):
    """A processor around one user function, called with ``(key, value)`` or, without ``with_key``
    for the ``*_values`` operations, with the value alone."""

    def __init__(self, name: str, function: Callable[..., Any], with_key: bool = True) -> None:
        super().__init__(name)
        self.function = function
        self.with_key = with_key


class Filter(FunctionProcessor):
    """Keeps records for which ``predicate(key, value)`` is truthy (falsy when ``negate``)."""

    def __init__(self, name: str, predicate: Callable[[Any, Any], Any], negate: bool = False) -> None:
        super().__init__(name, predicate)
        self.negate = negate

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        keep = out.append
        predicate, negate = self.function, self.negate
        for record in records:
            try:
                if (not predicate(record.key, record.value)) is negate:
                    keep(record)
            except Exception as error:
                self.context.record_error(self.name, record, error)
        return out


class MapValues(FunctionProcessor):
    """Replaces each value by ``mapper(value)`` (or ``mapper(key, value)`` with ``with_key``)."""

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        emit = out.append
        mapper, with_key = self.function, self.with_key
        for record in records:
            try:
                value = mapper(record.key, record.value) if with_key else mapper(record.value)
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            emit(Record(record.key, value, record.timestamp, record.headers, record.offset))
        return out


class Map(FunctionProcessor):
    """Replaces key and value by the pair ``mapper(key, value)`` returns."""

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        emit = out.append
        mapper = self.function
        for record in records:
            try:
                key, value = mapper(record.key, record.value)
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            emit(Record(key, value, record.timestamp, record.headers, record.offset))
        return out


class SelectKey(FunctionProcessor):
    """Replaces each key by ``selector(key, value)``."""

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        emit = out.append
        selector = self.function
        for record in records:
            try:
                key = selector(record.key, record.value)
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            emit(Record(key, record.value, record.timestamp, record.headers, record.offset))
        return out


class FlatMap(FunctionProcessor):
    """Replaces each record by the (key, value) pairs ``mapper(key, value)`` yields."""

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        mapper = self.function
        for record in records:
            try:
                produced = [Record(key, value, record.timestamp, record.headers, record.offset)
                            for key, value in mapper(record.key, record.value)]
            except Exception as error:  # includes a mapper that yields something other than pairs
                self.context.record_error(self.name, record, error)
                continue
            out.extend(produced)
        return out


class FlatMapValues(FunctionProcessor):
    """Replaces each record by one record per value ``mapper(value)`` yields, same key."""

    def process(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        emit = out.append
        mapper, with_key = self.function, self.with_key
        for record in records:
            try:
                values = list(mapper(record.key, record.value) if with_key else mapper(record.value))
            except Exception as error:
                self.context.record_error(self.name, record, error)
                continue
            for value in values:
                emit(Record(record.key, value, record.timestamp, record.headers, record.offset))
        return out


class Peek(FunctionProcessor):
    """Calls ``action(key, value)`` for its side effect and forwards every record unchanged.

    With ``terminal`` (``foreach``) nothing is forwarded.
    """

    def __init__(self, name: str, action: Callable[[Any, Any], Any], terminal: bool = False) -> None:
        super().__init__(name, action)
        self.terminal = terminal

    def process(self, records: list[Record]) -> list[Record]:
        action = self.function
        for record in records:
            try:
                action(record.key, record.value)
            except Exception as error:
                self.context.record_error(self.name, record, error)
        return [] if self.terminal else records


class PassThrough(Processor):
    """Forwards its input as is: where streams merge or a name is only a waypoint."""

    def process(self, records: list[Record]) -> list[Record]:
        return records


class Split(Processor):
    """Sends each record to the first branch whose predicate holds, else to the default branch.

    Children are the branches in declaration order, then the default branch if there is one.
    Predicates may be ``async def``; then each predicate is awaited for the records still
    unrouted, concurrently within the batch.
    """

    routes = True

    def __init__(self, name: str, predicates: list[Callable[[Any, Any], Any]], has_default: bool,
                 is_async: bool = False) -> None:
        super().__init__(name)
        self.predicates = predicates
        self.has_default = has_default
        self.is_async = is_async

    def process(self, records: list[Record]) -> Any:
        if self.is_async:
            return self._route_async(records)
        outputs: list[list[Record]] = [[] for _ in range(len(self.predicates) + self.has_default)]
        numbered = list(enumerate(self.predicates))
        for record in records:
            try:
                for index, predicate in numbered:
                    if predicate(record.key, record.value):
                        outputs[index].append(record)
                        break
                else:
                    if self.has_default:
                        outputs[-1].append(record)
            except Exception as error:
                self.context.record_error(self.name, record, error)
        return outputs

    async def _route_async(self, records: list[Record]) -> list[list[Record]]:
        outputs: list[list[Record]] = [[] for _ in range(len(self.predicates) + self.has_default)]
        unrouted = records
        for index, predicate in enumerate(self.predicates):
            results = await asyncio.gather(*(_maybe_await(predicate, r) for r in unrouted), return_exceptions=True)
            remaining = []
            for record, result in zip(unrouted, results):
                if isinstance(result, Exception):
                    self.context.record_error(self.name, record, result)
                elif result:
                    outputs[index].append(record)
                else:
                    remaining.append(record)
            unrouted = remaining
        if self.has_default:
            outputs[-1].extend(unrouted)
        return outputs


async def _maybe_await(predicate: Callable[[Any, Any], Any], record: Record) -> Any:
    result = predicate(record.key, record.value)
    return await result if inspect.isawaitable(result) else result
