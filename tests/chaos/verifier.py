"""Checks what the chaos app wrote against the input the generator is known to have written.

Everything is read with read_committed consumers, as a downstream reader would. The checks:

* input        the input topic holds exactly the generated records (else the test is void)
* drained      the app's group committed every input offset
* transactions no output or internal partition has an open transaction left
               (last stable offset == high watermark)
* echo         the echo topic repeats the input record for record, per partition, in order,
               up to the committed input offsets
* agg-direct,  per key, the k-th update equals the running aggregate after the k-th input
  agg-repart   (no gap, no duplicate); agg-repart went through a repartition topic
* final        the last update per key and the stores' changelogs hold the known final answer
* windowed     emit-on-close: one final record per closed (key, window) with the value of its
               on-time inputs, none for a window still open or without on-time input
* table        the table topic holds exactly the generated rows; the group committed all of it;
               the table store's changelog ends with every key's last row
* enriched     the stream-table join: one record per input with the table version the input
               had to meet (the latest row older than its partition's stream time), its key,
               partition and timestamp

Under exactly_once every duplicate, gap, inflated value or mismatch fails. Under
at_least_once, records processed again after a crash are allowed: repeated outputs count as
``duplicates`` and aggregates that counted an input twice as ``inflated``; a gap (a lost
input) or any other mismatch still fails (an input none of whose enrichments has the right
version is a mismatch; a repeat may see another version).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streamer.state import timestamped
from tests.chaos.app import DIRECT_STORE, REPART_STORE, TABLE_STORE
from tests.chaos.generator import (
    EnrichmentExpectations,
    InputRecord,
    TableRow,
    WindowExpectations,
    enrichment_expectations,
    generate_input,
    generate_table,
    parse_window_key,
    partition_of,
    running_aggregates,
    window_expectations,
    window_key,
)

GUARANTEES = ("exactly_once", "exactly_once_v2", "at_least_once")
KINDS = ("duplicates", "gaps", "inflated", "mismatches")
#: Examples kept per kind of problem, per check.
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class ChaosTopics:
    """The app's external topics; their names are the app's settings."""

    input: str
    echo: str
    agg_direct: str
    agg_repart: str
    windowed: str
    table: str
    enriched: str

    def app_settings(self) -> dict[str, str]:
        return {"input": self.input, "echo": self.echo, "agg_direct": self.agg_direct, "agg_repart": self.agg_repart,
                "windowed": self.windowed, "table": self.table, "enriched": self.enriched}

    @property
    def sources(self) -> list[str]:
        """The topics the generator writes and the app reads."""
        return [self.input, self.table]

    @property
    def outputs(self) -> list[str]:
        return [self.echo, self.agg_direct, self.agg_repart, self.windowed, self.enriched]


class Message(NamedTuple):
    """What the checks need of a consumed record."""

    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


Partitions = dict[int, list[Message]]


@dataclass
class Check:
    """The tally of one check. ``strict`` checks fail on anything, whatever the guarantee."""

    name: str
    strict: bool = False
    checked: int = 0
    duplicates: int = 0
    gaps: int = 0
    inflated: int = 0
    mismatches: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, kind: str, example: str, count: int = 1) -> None:
        shown = getattr(self, kind) and sum(e.startswith(f"{kind}:") for e in self.examples)
        setattr(self, kind, getattr(self, kind) + count)
        if shown < MAX_EXAMPLES:
            self.examples.append(f"{kind}: {example}")

    def passed(self, guarantee: str) -> bool:
        if self.strict or guarantee.startswith("exactly_once"):
            return not any(getattr(self, kind) for kind in KINDS)
        return self.gaps == 0 and self.mismatches == 0


@dataclass
class Report:
    """The verifier's result: one Check per property, judged by the run's guarantee."""

    guarantee: str
    application_id: str
    records: int
    keys: int
    checks: list[Check] = field(default_factory=list)
    #: Echo records only a read_uncommitted reader sees: written in transactions that were aborted,
    #: which shows the kills did land inside open transactions.
    aborted_echo_records: int = 0
    #: What the input makes of the windows (closed, still open, reordered, late), for the report.
    windows: str = ""
    #: What the input and the table make of the enrichment, for the report.
    enrichment: str = ""

    @property
    def ok(self) -> bool:
        return all(check.passed(self.guarantee) for check in self.checks)

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.name == name)

    def total(self, kind: str) -> int:
        return sum(getattr(check, kind) for check in self.checks)

    def format(self) -> str:
        lines = [
            (f"chaos verifier: {self.guarantee}, application {self.application_id}, "
             f"{self.records} input records over {self.keys} keys"),
            f"  {'check':<13}{'checked':>9}{'duplicates':>12}{'gaps':>7}{'inflated':>10}{'mismatches':>12}  result",
        ]
        for check in self.checks:
            verdict = "ok" if check.passed(self.guarantee) else "FAIL"
            if verdict == "ok" and (check.duplicates or check.inflated):
                verdict = "ok (allowed under at_least_once)"
            lines.append(f"  {check.name:<13}{check.checked:>9}{check.duplicates:>12}{check.gaps:>7}"
                         f"{check.inflated:>10}{check.mismatches:>12}  {verdict}")
        for check in self.checks:
            lines += [f"    {check.name}: {example}" for example in check.examples]
        if self.windows:
            lines.append(f"  windows: {self.windows}")
        if self.enrichment:
            lines.append(f"  enrichment: {self.enrichment}")
        if self.guarantee.startswith("exactly_once"):
            lines.append(f"  echo records in aborted transactions (invisible to read_committed): "
                         f"{self.aborted_echo_records}")
        lines.append(f"  RESULT: {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)


# -- the checks, as pure functions of what was read ----------------------------------------


Written = InputRecord | TableRow


def expected_by_partition(records: Iterable[Written], partitions: int) -> dict[int, list[Written]]:
    out: dict[int, list[Written]] = {p: [] for p in range(partitions)}
    for record in records:
        out[partition_of(record.key, partitions)].append(record)
    return out


def check_input(records: Iterable[Written], read: Partitions, partitions: int,
                base_timestamp_ms: int | None, name: str = "input", check: Check | None = None) -> Check:
    """A source topic must be exactly what the generator wrote, or nothing else proves anything."""
    check = check or Check(name, strict=True)
    for partition, expected in expected_by_partition(records, partitions).items():
        got = read.get(partition, [])
        for position, (record, message) in enumerate(zip(expected, got)):
            check.checked += 1
            same = message.key == record.key_bytes and message.value == record.payload and message.offset == position
            if same and base_timestamp_ms is not None:
                same = message.timestamp == base_timestamp_ms + record.ts_offset_ms
            if not same:
                check.note("mismatches", f"{name} p{partition} offset {message.offset}: {message.value!r}, "
                                         f"expected {record.payload!r}")
        if len(got) < len(expected):
            check.note("gaps", f"{name} p{partition} has {len(got)} records, expected {len(expected)}",
                       len(expected) - len(got))
        elif len(got) > len(expected):
            check.note("duplicates", f"{name} p{partition} has {len(got)} records, expected {len(expected)}",
                       len(got) - len(expected))
    return check


def check_drained(committed: dict[int, int], ends: dict[int, int], name: str = "input",
                  check: Check | None = None) -> Check:
    """The group's committed offsets reached the end of a source topic: every record was processed."""
    check = check or Check("drained", strict=True)
    for partition, end in sorted(ends.items()):
        check.checked += 1
        done = committed.get(partition, 0)
        if done < end:
            check.note("gaps", f"{name} p{partition} committed {done} of {end}", end - done)
        elif done > end:
            check.note("mismatches", f"{name} p{partition} committed {done} beyond its end {end}")
    return check


def check_transactions(stable: dict[tuple[str, int], int], high: dict[tuple[str, int], int],
                       name: str = "transactions") -> Check:
    """Every partition's last stable offset equals its high watermark: no transaction left open."""
    check = Check(name, strict=True)
    for tp, watermark in sorted(high.items()):
        check.checked += 1
        if stable.get(tp) != watermark:
            check.note("mismatches", f"{tp[0]} p{tp[1]}: last stable offset {stable.get(tp)} < high watermark "
                                     f"{watermark} (dangling transaction)")
    return check


def check_echo(input_read: Partitions, echo_read: Partitions, committed: dict[int, int]) -> Check:
    """Walk each echo partition against its input partition.

    A record equal to the next expected input advances; one equal to an earlier input is a
    duplicate (a replay after a crash); one past the expected input skips, and the skipped
    records are gaps. Whatever is not an input record at all is a mismatch.
    """
    check = Check("echo")
    for partition, inputs in sorted(input_read.items()):
        position_of = {message.value: index for index, message in enumerate(inputs)}
        expected = 0
        limit = committed.get(partition, 0)
        for message in echo_read.get(partition, []):
            check.checked += 1
            index = position_of.get(message.value)
            if index is None:
                check.note("mismatches", f"echo p{partition} offset {message.offset}: {message.value!r} is no input "
                                         f"record of p{partition}")
                continue
            source = inputs[index]
            if (message.key, message.timestamp) != (source.key, source.timestamp):
                check.note("mismatches", f"echo p{partition} offset {message.offset}: key/timestamp "
                                         f"{message.key!r}/{message.timestamp} != input "
                                         f"{source.key!r}/{source.timestamp}")
            if index >= limit:
                check.note("mismatches", f"echo p{partition} offset {message.offset} echoes input offset {index}, "
                                         f"which the group has not committed ({limit})")
            if index < expected:
                check.note("duplicates", f"echo p{partition} offset {message.offset} repeats input offset {index}")
                continue
            if index > expected:
                check.note("gaps", f"echo p{partition} misses input offsets {expected}..{index - 1}", index - expected)
            expected = index + 1
        if expected < limit:
            check.note("gaps", f"echo p{partition} ends at input offset {expected}, committed {limit}",
                       limit - expected)
    return check


def updates_by_key(read: Partitions, partitions: int, check: Check) -> dict[str, list[Any]]:
    """Decode the updates in partition order (a tombstone stays None); a key in the wrong partition is a mismatch."""
    out: dict[str, list[Any]] = {}
    for partition, messages in sorted(read.items()):
        for message in messages:
            key = (message.key or b"").decode()
            if partition_of(key, partitions) != partition:
                check.note("mismatches", f"update of key {key!r} in p{partition}, not its partition")
            value = None if message.value is None else orjson.loads(message.value)
            out.setdefault(key, []).append(value)
    return out


def check_updates(name: str, expected: dict[str, list[dict[str, Any]]], updates: dict[str, list[Any]],
                  check: Check | None = None) -> Check:
    """Line each key's updates up with its inputs through the ``seq`` they carry.

    The update that folded the k-th input (seq k-1) must equal the running aggregate after
    k inputs. A seq seen before is a duplicate; a seq jumping ahead leaves gaps. A correct
    seq with a too-high count means an input was counted twice (inflated); anything else
    that differs is a mismatch.
    """
    check = check or Check(name)
    for key in sorted(set(expected) | set(updates)):
        history = expected.get(key, [])
        following = 0
        for update in updates.get(key, []):
            check.checked += 1
            seq = update.get("seq") if isinstance(update, dict) else None
            if not isinstance(seq, int) or not 0 <= seq < len(history):
                check.note("mismatches", f"key {key}: update {update!r} names no input of the key")
                continue
            if seq < following:
                check.note("duplicates", f"key {key}: input seq {seq} folded again")
                continue
            if seq > following:
                check.note("gaps", f"key {key}: inputs seq {following}..{seq - 1} have no update", seq - following)
            _compare(check, f"key {key} seq {seq}", update, history[seq])
            following = seq + 1
        if following < len(history):
            check.note("gaps", f"key {key}: updates stop after seq {following - 1} of {len(history) - 1}",
                       len(history) - following)
    return check


def _compare(check: Check, where: str, got: dict[str, Any], want: dict[str, Any]) -> None:
    if got == want:
        return
    if isinstance(got.get("count"), int) and got["count"] > want["count"]:
        check.note("inflated", f"{where}: {got} counts more than {want}")
    else:
        check.note("mismatches", f"{where}: {got} != {want}")


def check_final(expected: dict[str, list[dict[str, Any]]], finals: dict[str, dict[str, Any]]) -> Check:
    """``finals`` maps 'where/key' to the last value seen there; each must be the key's known answer."""
    check = Check("final")
    for where_key, got in sorted(finals.items()):
        check.checked += 1
        key = where_key.rsplit("/", 1)[1]
        want = expected[key][-1] if expected.get(key) else None
        if want is None or not isinstance(got, dict):
            check.note("mismatches", f"{where_key}: {got!r}, expected {want!r}")
        else:
            _compare(check, where_key, got, want)
    for key in sorted(expected):
        for where in _final_sources():
            if f"{where}/{key}" not in finals:
                check.note("gaps", f"{where}: no value for key {key}")
    return check


def _final_sources() -> tuple[str, ...]:
    return ("agg-direct", "agg-repart", f"{DIRECT_STORE}-changelog", f"{REPART_STORE}-changelog")


def check_windowed(expected: WindowExpectations, read: Partitions, partitions: int,
                   repeats_allowed: bool = False) -> Check:
    """Kafka Streams SmokeTest's invariant for emit-on-close: one final record per closed window.

    Every closed (key, window) must have exactly one record, with the value of its on-time
    inputs and the timestamp of the latest of them: a missing one is a gap, a repeat a
    duplicate, a count above the expected one inflated (an input folded twice). A record
    for a window that is still open (emitted before its close) or that has no on-time
    input at all (only late records, or none) is a mismatch, as is a key in the wrong
    partition or a wrong timestamp.

    With ``repeats_allowed`` (at-least-once) a window may be emitted again after a crash,
    from records processed again: once one of its records is exactly right, the others
    count as duplicates only.
    """
    check = Check("windowed")
    emitted: dict[tuple[str, int], list[tuple[Any, int]]] = {}
    for partition, messages in sorted(read.items()):
        for message in messages:
            text = (message.key or b"").decode()
            window = parse_window_key(text)
            if window is None:
                check.note("mismatches", f"windowed p{partition} offset {message.offset}: key {text!r} names no window")
                continue
            if partition_of(text, partitions) != partition:
                check.note("mismatches", f"windowed record {text} in p{partition}, not its partition")
            value = None if message.value is None else orjson.loads(message.value)
            emitted.setdefault(window, []).append((value, message.timestamp))
    for window, want in sorted(expected.finals.items()):
        check.checked += 1
        where = window_key(*window)
        got = emitted.get(window, [])
        if not got:
            check.note("gaps", f"{where}: no final record, expected {want}")
            continue
        if len(got) > 1:
            check.note("duplicates", f"{where}: {len(got)} final records {got}", len(got) - 1)
            if repeats_allowed and (want, expected.timestamps[window]) in got:
                continue
        for value, timestamp in got:
            if not isinstance(value, dict):
                check.note("mismatches", f"{where}: final record {value!r}, expected {want}")
                continue
            _compare(check, where, value, want)
            if timestamp != expected.timestamps[window]:
                check.note("mismatches", f"{where}: timestamp {timestamp}, expected {expected.timestamps[window]} "
                                         "(the window's latest on-time input)")
    for window in sorted(emitted.keys() - expected.finals.keys()):
        state = "still open at the end" if window in expected.still_open else "without on-time input"
        check.note("mismatches", f"{window_key(*window)}: {emitted[window]} for a window {state}",
                   len(emitted[window]))
    return check


def check_enriched(records: list[InputRecord], expected: EnrichmentExpectations, read: Partitions,
                   partitions: int, base_timestamp_ms: int) -> Check:
    """The stream-table join: each input enriched once, with the version it had to meet.

    Outputs are lined up with inputs by the id they carry (key and seq). An input without
    one is a gap, every further one a duplicate. An input none of whose outputs has the
    expected version is a mismatch (one per input), as is an output naming no input, in
    the wrong partition, with another key or with a timestamp other than the input's.
    A repeat with another version than the first output (a replay after a crash that met
    a table already further on) shows in the examples; it fails exactly-once as a duplicate.
    """
    check = Check("enriched")
    inputs: dict[tuple[Any, Any], InputRecord] = {(record.key, record.seq): record for record in records}
    outputs: dict[tuple[str, int], list[Any]] = {}
    for partition, messages in sorted(read.items()):
        for message in messages:
            check.checked += 1
            value = None if message.value is None else orjson.loads(message.value)
            where = f"enriched p{partition} offset {message.offset}"
            source = inputs.get((value.get("k"), value.get("s"))) if isinstance(value, dict) else None
            if value is None or source is None:
                check.note("mismatches", f"{where}: {value!r} names no input")
                continue
            timestamp = base_timestamp_ms + source.ts_offset_ms
            if (message.key, message.timestamp) != (source.key_bytes, timestamp) or \
                    partition_of(source.key, partitions) != partition:
                check.note("mismatches", f"{where}: key {message.key!r}, timestamp {message.timestamp} in "
                                         f"p{partition}; input {source.key} seq {source.seq} has timestamp {timestamp} "
                                         f"and partition {partition_of(source.key, partitions)}")
            outputs.setdefault((source.key, source.seq), []).append(value.get("version"))
    for ident, record in inputs.items():
        want = expected.versions[ident]
        seen = outputs.get(ident, [])
        where = f"input {record.key} seq {record.seq}"
        if not seen:
            check.note("gaps", f"{where}: not enriched (expected version {want})")
            continue
        if len(seen) > 1:
            other = f", versions {seen}" if len(set(seen)) > 1 else ""
            check.note("duplicates", f"{where}: enriched {len(seen)} times{other}", len(seen) - 1)
        if want not in seen:
            check.note("mismatches", f"{where}: enriched with version {seen[0] if len(seen) == 1 else seen}, "
                                     f"expected {want}")
    return check


def check_table_store(table: list[TableRow], changelog: dict[str, tuple[int | None, Any]],
                      base_timestamp_ms: int) -> Check:
    """The table store's changelog ends with each key's last row: its value and timestamp, or a tombstone."""
    check = Check("table")
    last: dict[str, TableRow] = {row.key: row for row in table}
    for key, row in sorted(last.items()):
        check.checked += 1
        want = (None, None) if row.deleted else (base_timestamp_ms + row.ts_offset_ms, {"version": row.version})
        got = changelog.get(key)
        if got is None and not row.deleted:
            check.note("gaps", f"{TABLE_STORE}-changelog has no row for {key}, expected {want}")
        elif got is not None and got != want:
            check.note("mismatches", f"{TABLE_STORE}-changelog ends {key} with {got}, expected {want}")
    for key in sorted(changelog.keys() - last.keys()):
        check.note("mismatches", f"{TABLE_STORE}-changelog has a row for {key}, which the table never had")
    return check


def base_timestamp_of(records: list[InputRecord], read: Partitions, partitions: int) -> int:
    """The run's base timestamp, from the first input record read back (for a check by hand)."""
    for partition, expected in expected_by_partition(records, partitions).items():
        if expected and read.get(partition):
            return read[partition][0].timestamp - expected[0].ts_offset_ms
    return 0


def last_values(read: Partitions) -> dict[str, Any]:
    """The last value per key of a timestamped store's changelog, in partition order (a key lives in
    one partition); the value bytes follow the timestamp of the record that last set them."""
    return {key: value for key, (_, value) in last_timestamped(read).items()}


def last_timestamped(read: Partitions) -> dict[str, tuple[int | None, Any]]:
    """(timestamp, value) last written per key to a timestamped store's changelog; (None, None) if deleted."""
    out: dict[str, tuple[int | None, Any]] = {}
    for _, messages in sorted(read.items()):
        for message in messages:
            key = (message.key or b"").decode()
            if message.value is None:
                out[key] = (None, None)
            else:
                timestamp, value = timestamped.decode(message.value)
                out[key] = (timestamp, orjson.loads(value))
    return out


# -- reading the topics --------------------------------------------------------------------


async def read_topics(bootstrap: str, topics: list[str], isolation_level: str = "read_committed",
                      timeout: float = 120.0) -> dict[str, Partitions]:
    """Everything in ``topics`` up to the end offsets of now (the last stable offsets under read_committed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                isolation_level=isolation_level, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=8 * 1_048_576, fetch_max_bytes=32 * 1_048_576,
                                client_id=f"chaos-verifier-{uuid.uuid4().hex[:6]}")
    partitions = await topic_partitions(bootstrap, topics)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: dict[str, Partitions] = {topic: {} for topic in topics}
        for tp in partitions:
            out[tp.topic][tp.partition] = []
        deadline = time.monotonic() + timeout
        pending = {tp for tp, end in ends.items() if end > 0}
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topics} did not reach the end offsets {ends} in {timeout}s")
            batches = await consumer.getmany(*pending, timeout_ms=500, max_records=50_000)
            for tp, messages in batches.items():
                out[tp.topic][tp.partition] += [Message(m.offset, m.key, m.value, m.timestamp) for m in messages]
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        for tp, messages in ((tp, out[tp.topic][tp.partition]) for tp in partitions):
            # A position is where the next fetch starts; records past the end of "now" are cut off
            # so that both isolation levels report the same moment.
            out[tp.topic][tp.partition] = [m for m in messages if m.offset < ends[tp]]
        return out
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topics: list[str], isolation_level: str) -> dict[tuple[str, int], int]:
    """End offsets per partition: the high watermark, or under read_committed the last stable offset."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                isolation_level=isolation_level)
    partitions = await topic_partitions(bootstrap, topics)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def topic_partitions(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, from the admin client (a fresh consumer's metadata may lack new topics)."""
    names = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="chaos-verifier-admin")
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics(names)}
    finally:
        await admin.close()
    out = []
    for topic in names:
        info = described.get(topic)
        if info is None or info["error_code"] != 0 or not info["partitions"]:
            raise AssertionError(f"topic {topic!r} does not exist: {info}")
        out += [TopicPartition(topic, p["partition"]) for p in sorted(info["partitions"], key=lambda p: p["partition"])]
    return out


async def internal_topics(admin: AIOKafkaAdminClient, application_id: str) -> list[str]:
    return sorted(t for t in await admin.list_topics() if t.startswith(f"{application_id}-"))


async def committed_offsets(admin: AIOKafkaAdminClient, application_id: str, topic: str) -> dict[int, int]:
    offsets = await admin.list_consumer_group_offsets(application_id)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


# -- the whole verification ----------------------------------------------------------------


async def open_transactions(bootstrap: str, application_id: str, topics: ChaosTopics,
                            name: str = "transactions") -> Check:
    """Check (a) on the outputs and the app's internal topics: last stable offset vs high watermark."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="chaos-verifier-admin")
    await admin.start()
    try:
        watched = topics.outputs + await internal_topics(admin, application_id)
    finally:
        await admin.close()
    stable = await end_offsets(bootstrap, watched, "read_committed")
    high = await end_offsets(bootstrap, watched, "read_uncommitted")
    return check_transactions(stable, high, name)


async def verify(bootstrap: str, application_id: str, topics: ChaosTopics, guarantee: str, *,
                 seed: int, records: int, keys: int, base_timestamp_ms: int | None = None) -> Report:
    """Read everything and run every check; the report says what failed and gives examples."""
    if guarantee not in GUARANTEES:
        raise ValueError(f"guarantee must be one of {GUARANTEES}, not {guarantee!r}")
    generated = generate_input(seed, records, keys)
    table = generate_table(seed, generated, keys)
    expected = running_aggregates(generated)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="chaos-verifier-admin")
    await admin.start()
    try:
        committed = {topic: await committed_offsets(admin, application_id, topic) for topic in topics.sources}
    finally:
        await admin.close()
    transactions = await open_transactions(bootstrap, application_id, topics)
    changelogs = {name: f"{application_id}-{name}-changelog" for name in (DIRECT_STORE, REPART_STORE, TABLE_STORE)}
    read = await read_topics(bootstrap, [*topics.sources, *topics.outputs, *changelogs.values()])
    partitions = len(read[topics.input])
    if base_timestamp_ms is None:
        base_timestamp_ms = base_timestamp_of(generated, read[topics.input], partitions)

    report = Report(guarantee, application_id, records, keys)
    sources = check_input(generated, read[topics.input], partitions, base_timestamp_ms)
    report.checks.append(check_input(table, read[topics.table], partitions, base_timestamp_ms, "table", sources))
    drained = Check("drained", strict=True)
    for topic in topics.sources:
        ends = {p: (messages[-1].offset + 1 if messages else 0) for p, messages in read[topic].items()}
        check_drained(committed[topic], ends, "input" if topic == topics.input else "table", drained)
    report.checks.append(drained)
    report.checks.append(transactions)
    report.checks.append(check_echo(read[topics.input], read[topics.echo], committed[topics.input]))
    finals: dict[str, Any] = {}
    for name, topic in (("agg-direct", topics.agg_direct), ("agg-repart", topics.agg_repart)):
        check = Check(name)
        updates = updates_by_key(read[topic], len(read[topic]), check)
        report.checks.append(check_updates(name, expected, updates, check))
        finals.update({f"{name}/{key}": values[-1] for key, values in updates.items() if values})
    for store in (DIRECT_STORE, REPART_STORE):
        last = last_values(read[changelogs[store]])
        finals.update({f"{store}-changelog/{key}": value for key, value in last.items()})
    report.checks.append(check_final(expected, finals))
    windows = window_expectations(generated, partitions, base_timestamp_ms)
    report.checks.append(check_windowed(windows, read[topics.windowed], len(read[topics.windowed]),
                                        repeats_allowed=guarantee == "at_least_once"))
    report.windows = windows.summary()
    report.checks.append(check_table_store(table, last_timestamped(read[changelogs[TABLE_STORE]]), base_timestamp_ms))
    enrichment = enrichment_expectations(generated, table, partitions)
    report.checks.append(check_enriched(generated, enrichment, read[topics.enriched], len(read[topics.enriched]),
                                        base_timestamp_ms))
    report.enrichment = enrichment.summary()
    uncommitted = await read_topics(bootstrap, [topics.echo], "read_uncommitted")
    report.aborted_echo_records = (sum(len(m) for m in uncommitted[topics.echo].values())
                                   - sum(len(m) for m in read[topics.echo].values()))
    return report


def main(argv: list[str] | None = None) -> int:
    """Verify a finished run by hand, e.g. one whose runner was interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.verifier", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--application-id", required=True)
    parser.add_argument("--guarantee", choices=GUARANTEES, required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--echo", required=True)
    parser.add_argument("--agg-direct", required=True)
    parser.add_argument("--agg-repart", required=True)
    parser.add_argument("--windowed", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--enriched", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=20)
    args = parser.parse_args(argv)
    topics = ChaosTopics(args.input, args.echo, args.agg_direct, args.agg_repart, args.windowed, args.table,
                         args.enriched)
    report = asyncio.run(verify(args.bootstrap, args.application_id, topics, args.guarantee,
                                seed=args.seed, records=args.records, keys=args.keys))
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
