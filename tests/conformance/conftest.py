"""The oracle's results for every case, computed once per session in one JVM run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.cases import all_cases
from tests.conformance.oracle import run_oracle


@pytest.fixture(scope="session")
def oracle_results() -> dict[str, dict[str, Any]]:
    """Kafka Streams' records (or its error) per case name, for all cases at once (JVM start-up is slow)."""
    return run_oracle([case.to_oracle() for case in all_cases()])
