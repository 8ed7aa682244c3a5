"""Checks on the user functions the DSL is given, done when the topology is built."""

from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar, overload

from streamer.errors import TopologyError


def is_async_callable(function: object) -> bool:
    """An ``async def`` function, or an object whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(function):
        return True
    return callable(function) and inspect.iscoroutinefunction(function.__call__)


def function_params(function: Callable[..., Any], **extra: Any) -> dict[str, Any]:
    """Parameters of a stream operation: the function and whether it must be awaited."""
    if not callable(function):
        raise TopologyError(f"expected a function, got {function!r}")
    return {"function": function, "is_async": is_async_callable(function), **extra}


F = TypeVar("F", bound=Callable[..., Any])


@overload
def sync_function(function: F) -> F: ...


@overload
def sync_function(function: F | None) -> F | None: ...


def sync_function(function: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """Table operations and aggregations run their functions inside the store update, synchronously."""
    if function is None:
        return None
    if not callable(function):
        raise TopologyError(f"expected a function, got {function!r}")
    if is_async_callable(function):
        raise TopologyError(
            f"{getattr(function, '__name__', function)!r} is async; table operations and aggregations take "
            "plain functions. Do the async work in a stream operation before the table"
        )
    return function
