"""Run a case through streamer's TopologyTestDriver and compare its records with the oracle's."""

from __future__ import annotations

import difflib
import json
from typing import Any

from streamer.testing import TopologyTestDriver
from streamer.windows.windowed import Windowed
from tests.conformance.cases import Case
from tests.conformance.topologies import build

#: One output record in the shape both sides print: topic, key, window ([start, end] or None), value, timestamp.
OutRecord = dict[str, Any]


def run_streamer(case: Case) -> list[OutRecord]:
    """The case's output records from streamer, topic by topic, each topic in the order written."""
    topology = build(case.topology, case.params)
    records: list[OutRecord] = []
    with TopologyTestDriver(topology, application_id="conformance") as driver:
        for row in case.inputs:
            driver.pipe(row.topic, row.key, row.value, timestamp=row.timestamp)
        for topic in case.outputs:
            for out in driver.read_records(topic):
                key, window = _split_key(out.key)
                records.append({"topic": topic, "key": key, "window": window, "value": out.value,
                                "timestamp": out.timestamp})
    return records


def _split_key(key: Any) -> tuple[Any, list[int] | None]:
    """A windowed key as (key, [start, end]); a JSON-serialized one ({"key", "start", "end"}) too."""
    if isinstance(key, Windowed):
        return key.key, [key.start, key.end]
    if isinstance(key, dict) and set(key) == {"key", "start", "end"}:
        return key["key"], [key["start"], key["end"]]
    return key, None


def _line(record: OutRecord) -> str:
    window = "" if record["window"] is None else f" window=[{record['window'][0]},{record['window'][1]}]"
    return (f"{record['topic']}: key={json.dumps(record['key'])}{window} value={json.dumps(record['value'])} "
            f"ts={record['timestamp']}")


def difference(case: Case, expected: list[OutRecord], actual: list[OutRecord]) -> str | None:
    """None when the records agree one for one; otherwise a report with a unified diff."""
    if expected == actual:
        return None
    diff = difflib.unified_diff([_line(r) for r in expected], [_line(r) for r in actual],
                                "kafka-streams", "streamer", lineterm="", n=2)
    inputs = "\n".join(f"  {i.topic}: key={json.dumps(i.key)} value={json.dumps(i.value)} ts={i.timestamp}"
                       for i in case.inputs)
    return (f"case {case.name}: streamer wrote {len(actual)} records, Kafka Streams {len(expected)}; "
            f"they differ (- Kafka Streams, + streamer):\n" + "\n".join(diff) + f"\ninputs, in order:\n{inputs}")
