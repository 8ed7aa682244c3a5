"""Reading a running worker's stores: the local read API (Kafka Streams' interactive queries).

Each view spans one store over the tasks this worker runs now. A key lives in exactly
one task, so a per-key read asks each task's view until one has it, and a scan joins
the tasks' scans. Reads see the tasks' write caches, so they include changes not yet
committed (under exactly-once such changes can still be rolled back): what the tasks'
processors see. The HTTP query server (``application_server``) reads committed state
only, and answers for keys of every worker (``streamer.runtime.query_server``); here,
keys of partitions other workers own are simply absent. Values are plain values;
``get_with_timestamp`` adds the timestamp that aggregates, tables and windows keep per value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from streamer.runtime.store_views import SessionStoreView, StoreView, WindowStoreView
from streamer.windows.windowed import Windowed


class LocalStoreView:
    """A key-value store (tables, aggregates, user stores) across this worker's tasks."""

    def __init__(self, name: str, views: Iterable[StoreView]) -> None:
        self.name = name
        self._views = list(views)

    def get(self, key: Any, default: Any = None) -> Any:
        for view in self._views:
            if key in view:
                return view.get(key)
        return default

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        """``(value, timestamp)`` of ``key`` in a timestamped store, or None if no task has it."""
        for view in self._views:
            if key in view:
                return view.get_with_timestamp(key)
        return None

    def items(self) -> Iterator[tuple[Any, Any]]:
        for view in self._views:
            yield from view.range()

    def all(self) -> dict[Any, Any]:
        return dict(self.items())

    def __contains__(self, key: Any) -> bool:
        return any(key in view for view in self._views)


class LocalWindowStoreView:
    """A window store (time and sliding windows) across this worker's tasks, by window start."""

    def __init__(self, name: str, views: Iterable[WindowStoreView]) -> None:
        self.name = name
        self._views = list(views)

    def get(self, key: Any, start: int, default: Any = None) -> Any:
        found = self.get_with_timestamp(key, start)
        return default if found is None else found[0]

    def get_with_timestamp(self, key: Any, start: int) -> tuple[Any, int] | None:
        return next((f for f in (view.get_with_timestamp(key, start) for view in self._views) if f is not None), None)

    def fetch(self, key: Any, time_from: int, time_to: int, backward: bool = False) -> list[tuple[int, Any]]:
        """``(start, value)`` of ``key``'s windows with ``time_from <= start <= time_to``."""
        return [window for view in self._views for window in view.fetch(key, time_from, time_to, backward)]

    def fetch_all(self, time_from: int, time_to: int) -> list[tuple[Any, int, Any]]:
        """``(key, start, value)`` of every window with ``time_from <= start <= time_to``, task by task."""
        return [window for view in self._views for window in view.fetch_all(time_from, time_to)]


class LocalSessionStoreView:
    """A session store across this worker's tasks; sessions come as ``Windowed(key, start, end)``."""

    def __init__(self, name: str, views: Iterable[SessionStoreView]) -> None:
        self.name = name
        self._views = list(views)

    def fetch(self, key: Any) -> list[tuple[Windowed, Any]]:
        return [session for view in self._views for session in view.fetch(key)]

    def find_sessions(self, key: Any, earliest_end: int, latest_start: int) -> list[tuple[Windowed, Any]]:
        return [session for view in self._views for session in view.find_sessions(key, earliest_end, latest_start)]

    def all(self) -> list[tuple[Windowed, Any]]:
        return [session for view in self._views for session in view.all()]
