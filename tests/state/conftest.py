"""Fixtures that run the common store tests against every store kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.state import KeyValueStore, StoreKind, open_store


@pytest.fixture(params=["rocksdb", "memory"])
def kind(request: pytest.FixtureRequest) -> StoreKind:
    value: StoreKind = request.param
    return value


@pytest.fixture
def store(kind: StoreKind, tmp_path: Path) -> Iterator[KeyValueStore]:
    opened = open_store(kind, tmp_path, "store")
    yield opened
    opened.close()
