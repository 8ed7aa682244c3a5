"""The workloads: what each contender computes, how many outputs to wait for, how to check them.

To add one (a stream-table join, say): subclass ``Workload``, register it in
``WORKLOADS``, and give each contender app an entry point of the same name (streamer:
a function in ``contenders/streamer_app.py``, ``-`` spelled ``_``; the others branch on ``BENCH_WORKLOAD``).
A contender that does not implement a workload leaves its name out of its ``workloads``
in ``benchmarks/lineup.py`` and is reported as "not applicable", not failed.
A workload with ``needs_table`` gets the table topic (``benchmarks/dataset.py``
``preload_table``) loaded once beside the input, before any run.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from benchmarks.contenders.spec import TABLE_FIELD, keep
from benchmarks.dataset import Dataset, table_row


class Workload:
    """One processing job, the same for every contender."""

    name = ""
    summary = ""
    #: Joins the input with the table topic, loaded once before any run.
    needs_table = False
    #: Time from the first visible output instead of the process start (see ``Enrich``).
    clock_from_first_output = False

    def expected_outputs(self, data: Dataset) -> int:
        """How many output records a correct run produces (the harness waits for this many)."""
        raise NotImplementedError

    def check(self, data: Dataset, last: Mapping[bytes | None, bytes | None]) -> str | None:
        """A problem with the outputs (``last``: the last value seen per key), or None if right."""
        raise NotImplementedError


class Stateless(Workload):
    name = "stateless"
    summary = "parse JSON, keep amount % 4 != 0, add a field, write JSON"

    def expected_outputs(self, data: Dataset) -> int:
        return data.kept

    def check(self, data: Dataset, last: Mapping[bytes | None, bytes | None]) -> str | None:
        if set(last) != data.kept_keys:
            return f"outputs cover {len(last)} keys, expected {len(data.kept_keys)}"
        for key, raw in last.items():
            value = orjson.loads(raw or b"null")
            if not isinstance(value, dict) or value.get("flag") is not True or not keep(value):
                return f"output for key {key!r} is not a kept, flagged record: {(raw or b'')[:120]!r}"
        return None


class Count(Workload):
    name = "count"
    summary = "count per key in a persistent store with a changelog, emit every update"

    def expected_outputs(self, data: Dataset) -> int:
        return data.spec.records

    def check(self, data: Dataset, last: Mapping[bytes | None, bytes | None]) -> str | None:
        wrong = [key for key, count in data.key_counts.items() if _as_int(last.get(key)) != count]
        if wrong:
            key = wrong[0]
            return (f"{len(wrong)} keys end with a wrong count, e.g. {key!r}: "
                    f"{last.get(key)!r} instead of {data.key_counts[key]}")
        return None


class WindowedCount(Workload):
    """A 10-second tumbling count per key; outputs keyed ``key@start`` with the count as value.

    Checked: the outputs cover exactly the expected (key, window) pairs and each one's last
    count is right (for on close, with as many outputs as pairs: one final count each, and
    the counts add up to the records in the closed windows).
    """

    def windows(self, data: Dataset) -> dict[bytes, int]:
        """The count each windowed output key must end with."""
        raise NotImplementedError

    def check(self, data: Dataset, last: Mapping[bytes | None, bytes | None]) -> str | None:
        expected = self.windows(data)
        if len(last) != len(expected):
            return f"outputs cover {len(last):,} (key, window) pairs, expected {len(expected):,}"
        wrong = [wkey for wkey, count in expected.items() if _as_int(last.get(wkey)) != count]
        if wrong:
            wkey = wrong[0]
            return (f"{len(wrong):,} windows end with a wrong count, e.g. {wkey!r}: "
                    f"{last.get(wkey)!r} instead of {expected[wkey]}")
        return None


class WindowedUpdate(WindowedCount):
    name = "windowed-update"
    summary = "10 s tumbling count per key in a window store with a changelog, emit every update"

    def expected_outputs(self, data: Dataset) -> int:
        return data.spec.records

    def windows(self, data: Dataset) -> dict[bytes, int]:
        return data.window_counts


class WindowedClose(WindowedCount):
    name = "windowed-close"
    summary = "10 s tumbling count per key, one final count per key and window when stream time passes its end"

    def expected_outputs(self, data: Dataset) -> int:
        return len(data.closed_window_counts)

    def windows(self, data: Dataset) -> dict[bytes, int]:
        return data.closed_window_counts


class Enrich(Workload):
    """Each record joined with its key's row of a 10k-key table (stream-table inner join).

    Every contender reads the whole table before the records it enriches: the ceiling reads
    the table topic to its end first, the others read their inputs in timestamp order and
    every row is older than the first record. The clock starts at the first visible output,
    which needs the table loaded, so loading it is outside the figure (and the outputs seen
    by then are left out of the rate). Checked: every key's last output is its last input
    record (``id``) carrying its row's field.
    """

    name = "enrich"
    summary = "join each record with its key's row of a 10k-key table, add the row's field, write JSON"
    needs_table = True
    clock_from_first_output = True

    def expected_outputs(self, data: Dataset) -> int:
        return data.spec.records

    def check(self, data: Dataset, last: Mapping[bytes | None, bytes | None]) -> str | None:
        if set(last) != set(data.key_counts):
            return f"outputs cover {len(last)} keys, expected {len(data.key_counts)}"
        for key in data.key_counts:
            raw = last[key]
            value = orjson.loads(raw or b"null")
            wanted = table_row(int(key.rpartition(b"-")[2]))[TABLE_FIELD]
            if (not isinstance(value, dict) or value.get("user") != key.decode()
                    or value.get("id") != data.last_ids[key] or value.get(TABLE_FIELD) != wanted):
                return (f"last output for key {key!r} should be record {data.last_ids[key]} with "
                        f"{TABLE_FIELD}={wanted!r}: {(raw or b'')[:160]!r}")
        return None


def _as_int(raw: bytes | None) -> int | None:
    try:
        value = orjson.loads(raw) if raw is not None else None
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, int) else None


WORKLOADS: dict[str, Workload] = {w.name: w for w in (Stateless(), Count(), WindowedUpdate(), WindowedClose(),
                                                       Enrich())}
