"""Stateless operations whose user function is ``async def``.

The calls for one batch run concurrently (bounded), so a slow coroutine in one task
holds up only that task's partition; results are applied in input order.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from streamer.processors.api import Processor
from streamer.record import Record

Combine = Callable[[Record, Any, list[Record]], None]


def _keep_if(record: Record, result: Any, out: list[Record]) -> None:
    if result:
        out.append(record)


def _keep_unless(record: Record, result: Any, out: list[Record]) -> None:
    if not result:
        out.append(record)


def _new_value(record: Record, result: Any, out: list[Record]) -> None:
    out.append(record.with_value(result))


def _new_key_value(record: Record, result: Any, out: list[Record]) -> None:
    key, value = result
    out.append(record.with_key_value(key, value))


def _new_key(record: Record, result: Any, out: list[Record]) -> None:
    out.append(record.with_key_value(result, record.value))


def _many_key_values(record: Record, result: Any, out: list[Record]) -> None:
    out.extend(record.with_key_value(key, value) for key, value in result)


def _many_values(record: Record, result: Any, out: list[Record]) -> None:
    out.extend(record.with_value(value) for value in result)


def _forward(record: Record, result: Any, out: list[Record]) -> None:
    out.append(record)


def _drop(record: Record, result: Any, out: list[Record]) -> None:
    return None


#: operation -> (whether the function takes (key, value) rather than value, how a result applies)
OPERATIONS: dict[str, tuple[bool, Combine]] = {
    "filter": (True, _keep_if),
    "filter_not": (True, _keep_unless),
    "map": (True, _new_key_value),
    "map_values": (False, _new_value),
    "map_values_with_key": (True, _new_value),
    "select_key": (True, _new_key),
    "flat_map": (True, _many_key_values),
    "flat_map_values": (False, _many_values),
    "flat_map_values_with_key": (True, _many_values),
    "peek": (True, _forward),
    "foreach": (True, _drop),
}


class AsyncOperation(Processor):
    """Applies an ``async def`` user function to a batch, at most ``concurrency`` calls at once."""

    is_async = True

    def __init__(self, name: str, operation: str, function: Callable[..., Awaitable[Any]],
                 concurrency: int = 256) -> None:
        super().__init__(name)
        self.with_key, self.combine = OPERATIONS[operation]
        self.function = function
        self.concurrency = concurrency

    async def process(self, records: list[Record]) -> list[Record]:
        function = self.function
        results: list[Any] = []
        for start in range(0, len(records), self.concurrency):
            chunk = records[start : start + self.concurrency]
            calls = (function(r.key, r.value) if self.with_key else function(r.value) for r in chunk)
            results.extend(await asyncio.gather(*calls, return_exceptions=True))
        out: list[Record] = []
        for record, result in zip(records, results):
            if isinstance(result, Exception):
                self.context.record_error(self.name, record, result)
                continue
            try:
                self.combine(record, result, out)
            except Exception as error:
                self.context.record_error(self.name, record, error)
        return out
