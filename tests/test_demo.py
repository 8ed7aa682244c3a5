"""The README's first command: the demo runs end to end against a real broker and loses no event."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from apps.demo import SEED
from tests.clickstream_data import events, expected_outputs

REPO = Path(__file__).resolve().parent.parent
EVENTS = 2_000


def test_the_demo_routes_every_event_it_writes(kafka_bootstrap: str) -> None:
    command = [sys.executable, "-m", "apps.demo", "--bootstrap-servers", kafka_bootstrap, "--events", str(EVENTS)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=200, check=False)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-4000:]
    expected = expected_outputs(events(EVENTS, SEED))
    routed = sum(len(rows) for partitions in expected.values() for rows in partitions.values())
    assert f"{EVENTS} events in, {routed} routed out" in done.stdout, printed[-4000:]
    assert "worker stopped with SIGTERM, exit code 0" in done.stdout
