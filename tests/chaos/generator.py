"""The chaos test's input: keyed integers known in advance, written at a steady rate.

The whole input is a function of ``(seed, count, keys)``: which key each record has, its
value, its per-key sequence number and its timestamp offset. The verifier recomputes it
instead of trusting what it reads back, so a lost or doubled input record is caught too.
Timestamps are ``base_timestamp_ms + offset``; offsets are mostly rising with some records
late by up to two seconds, so the app sees out-of-order event time as real input has.

The windowed output's answer follows from the input too (``window_expectations``): stream
time is per input partition (the maximum timestamp seen so far in offset order), so which
records are within the grace, which are late and which windows have closed by the end is
fixed by the input before the app runs.

The table topic (``generate_table``) holds versioned rows per key, ``{"version": n}`` or a
tombstone, at timestamps that rise strictly within the topic and never equal an input
timestamp, so timestamp order across a task's two partitions has no ties. The writer keeps
the table ``TABLE_LEAD_MS`` of event time ahead of the input: every row a stream record
can need is on the broker before the record is written. ``enrichment_expectations`` then
knows which version each input record is joined with (see its docstring).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streamer.partitioner import default_partition

#: Milliseconds of event time between consecutive records before jitter.
TICK_MS = 5
#: Share of records that arrive late, and how late they may be.
LATE_SHARE = 0.1
MAX_LATENESS_MS = 2_000
VALUE_RANGE = (-10_000, 10_000)
#: The app's tumbling windows: records up to ``MAX_LATENESS_MS`` late straddle the grace, so
#: some out-of-order records are still counted and some (about 2.5%) are dropped as late.
WINDOW_SIZE_MS = 1_000
WINDOW_GRACE_MS = 1_000
#: Mean event time between two table rows (over all keys): about one row per 20 input records.
TABLE_TICK_MS = 100
#: Share of table rows that are tombstones (the key's row deleted; a left join then sees None).
TABLE_DELETE_SHARE = 0.05
#: How far (event time) the table is written ahead of the input; at the full input rate of
#: 2000 records/s (10 s of event time per second) that is 0.2 s of wall-clock time.
TABLE_LEAD_MS = 2_000


def key_name(index: int) -> str:
    return f"k{index:02d}"


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One input record; ``seq`` says it is the seq-th record (from 0) of its key."""

    index: int
    key: str
    seq: int
    value: int
    ts_offset_ms: int

    @property
    def key_bytes(self) -> bytes:
        return self.key.encode()

    @property
    def payload(self) -> bytes:
        """The value on the wire; unique per record because it names key and seq."""
        return orjson.dumps({"k": self.key, "s": self.seq, "v": self.value})


def generate_input(seed: int, count: int, keys: int) -> list[InputRecord]:
    """The input of a run. Keys are skewed (k00 is the hottest) so some keys get long histories."""
    if keys < 1 or count < 0:
        raise ValueError(f"need keys >= 1 and count >= 0, got keys={keys} count={count}")
    rng = random.Random(seed)
    names = [key_name(i) for i in range(keys)]
    weights = [1.0 / (i + 1) ** 0.5 for i in range(keys)]
    chosen = rng.choices(names, weights=weights, k=count)
    seqs = dict.fromkeys(names, 0)
    records = []
    for index, key in enumerate(chosen):
        offset = index * TICK_MS
        if rng.random() < LATE_SHARE:
            offset -= rng.randint(1, MAX_LATENESS_MS)
        records.append(InputRecord(index, key, seqs[key], rng.randint(*VALUE_RANGE), max(offset, 0)))
        seqs[key] += 1
    return records


@dataclass(frozen=True, slots=True)
class TableRow:
    """One table row; ``version`` numbers the rows of its key from 1, tombstones included."""

    index: int
    key: str
    version: int
    deleted: bool
    ts_offset_ms: int

    @property
    def key_bytes(self) -> bytes:
        return self.key.encode()

    @property
    def payload(self) -> bytes | None:
        return None if self.deleted else orjson.dumps({"version": self.version})

    @property
    def seen_as(self) -> int | None:
        """What a join reads for the key once this row is the latest: its version, None if deleted."""
        return None if self.deleted else self.version


def generate_table(seed: int, records: list[InputRecord], keys: int) -> list[TableRow]:
    """The table rows of a run, over the input's event time, uniformly over the keys.

    Offsets rise strictly and avoid every input offset (so no table row ties with a stream
    record of any partition); a random generator of its own leaves the input unchanged.
    """
    rng = random.Random(f"table-{seed}")
    taken = {record.ts_offset_ms for record in records}
    end = len(records) * TICK_MS
    names = [key_name(i) for i in range(keys)]
    versions = dict.fromkeys(names, 0)
    rows: list[TableRow] = []
    offset = -1
    while True:
        offset += rng.randint(1, 2 * TABLE_TICK_MS - 1)
        while offset in taken:
            offset += 1
        if offset >= end:
            return rows
        key = rng.choice(names)
        versions[key] += 1
        rows.append(TableRow(len(rows), key, versions[key], rng.random() < TABLE_DELETE_SHARE, offset))


@dataclass
class EnrichmentExpectations:
    """What the enriched output must hold: per input (key, seq), the table version it joins with."""

    versions: dict[tuple[str, int], int | None]
    #: Inputs that join with no row (none yet, or the latest is a tombstone): ``version`` None.
    without_row: int
    #: Out-of-order inputs that see a newer version than the table had at their own timestamp.
    newer_than_own_time: int

    def summary(self) -> str:
        return (f"{len(self.versions)} inputs, {self.without_row} without a table row, "
                f"{self.newer_than_own_time} out-of-order inputs see a version newer than at their own timestamp")


def enrichment_expectations(records: list[InputRecord], table: list[TableRow],
                            partitions: int) -> EnrichmentExpectations:
    """Replay each partition pair (input p, table p) as the task merges them.

    The task takes its two partitions' records in timestamp order, each partition in
    offset order. Table rows rise in time, so before an input record the task has applied
    exactly the table rows older than the highest input timestamp of the partition so far,
    the record's own included (the partition's stream time): an on-time record sees the
    table as of its own timestamp, a late one as of that stream time. Timestamps never tie,
    and the writer keeps the table ahead, so the order is fixed by the data; it holds
    unless a task gives up waiting for an empty partition that still has records to come
    (``max_task_idle_ms``, see docs/chaos.md).
    """
    by_partition: dict[int, list[TableRow]] = {p: [] for p in range(partitions)}
    history: dict[str, list[TableRow]] = {}
    for row in table:
        by_partition[partition_of(row.key, partitions)].append(row)
        history.setdefault(row.key, []).append(row)
    offsets = {key: [row.ts_offset_ms for row in rows] for key, rows in history.items()}
    stream_time = [-1] * partitions
    applied = [0] * partitions
    current: dict[str, int | None] = {}
    versions: dict[tuple[str, int], int | None] = {}
    newer = 0
    for record in records:
        partition = partition_of(record.key, partitions)
        stream_time[partition] = max(stream_time[partition], record.ts_offset_ms)
        rows = by_partition[partition]
        while applied[partition] < len(rows) and rows[applied[partition]].ts_offset_ms < stream_time[partition]:
            row = rows[applied[partition]]
            current[row.key] = row.seen_as
            applied[partition] += 1
        seen = current.get(record.key)
        versions[(record.key, record.seq)] = seen
        if record.ts_offset_ms < stream_time[partition]:
            rows_of_key = history.get(record.key, [])
            before = bisect.bisect_left(offsets[record.key], record.ts_offset_ms) if rows_of_key else 0
            newer += seen != (rows_of_key[before - 1].seen_as if before else None)
    return EnrichmentExpectations(versions, sum(v is None for v in versions.values()), newer)


def enrich(record: dict[str, Any], row: dict[str, Any] | None) -> dict[str, Any]:
    """The app's joiner: the input's id (key and seq) and the table version it met (None: no row)."""
    return {"k": record["k"], "s": record["s"], "version": None if row is None else row["version"]}


def fold(aggregate: dict[str, Any] | None, seq: int, value: int) -> dict[str, Any]:
    """The running aggregate after one more input: the app and the verifier share this definition."""
    if aggregate is None or aggregate["count"] == 0:
        return {"count": 1, "sum": value, "min": value, "max": value, "seq": seq}
    return {
        "count": aggregate["count"] + 1,
        "sum": aggregate["sum"] + value,
        "min": min(aggregate["min"], value),
        "max": max(aggregate["max"], value),
        "seq": seq,
    }


def running_aggregates(records: list[InputRecord]) -> dict[str, list[dict[str, Any]]]:
    """Per key, the aggregate after its 1st, 2nd, ... input: what the k-th update must equal."""
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        history = out.setdefault(record.key, [])
        history.append(fold(history[-1] if history else None, record.seq, record.value))
    return out


def fold_window(aggregate: dict[str, int], value: int) -> dict[str, int]:
    """A window's aggregate after one more input: shared by the app and the verifier."""
    return {"count": aggregate["count"] + 1, "sum": aggregate["sum"] + value}


def window_key(key: str, start: int) -> str:
    """The windowed output's record key: the input key and the window start."""
    return f"{key}@{start}"


def parse_window_key(text: str) -> tuple[str, int] | None:
    key, _, start = text.rpartition("@")
    return (key, int(start)) if key and start.isdigit() else None


@dataclass
class WindowExpectations:
    """What the windowed output must hold after a run, per (key, window start)."""

    #: Windows stream time has closed: each must have exactly one final record with this value.
    finals: dict[tuple[str, int], dict[str, int]]
    #: The final record's timestamp: the latest of the window's on-time inputs.
    timestamps: dict[tuple[str, int], int]
    #: Windows with input that stream time has not closed by the end: no final record yet.
    still_open: set[tuple[str, int]]
    #: Records whose window had closed when they came (dropped, in no value).
    late: list[InputRecord]
    #: Records older than their partition's stream time but within the grace (counted).
    reordered: int

    def summary(self) -> str:
        return (f"{len(self.finals)} closed windows, {len(self.still_open)} still open at the end, "
                f"{self.reordered} out-of-order records within the grace, {len(self.late)} late records dropped")


def window_expectations(records: list[InputRecord], partitions: int, base_timestamp_ms: int,
                        size_ms: int = WINDOW_SIZE_MS, grace_ms: int = WINDOW_GRACE_MS) -> WindowExpectations:
    """Replay each partition in offset order with its own stream time, as the app's tasks do.

    A record is late iff its window's end + grace <= the partition's stream time (the
    highest timestamp so far; a late record, older than its window's end, never raises it);
    a window is closed at the end iff its end + grace <= the partition's final stream time.
    """
    stream_time = [-1] * partitions
    values: dict[tuple[str, int], dict[str, int]] = {}
    latest: dict[tuple[str, int], int] = {}
    late: list[InputRecord] = []
    reordered = 0
    for record in records:
        partition = partition_of(record.key, partitions)
        timestamp = base_timestamp_ms + record.ts_offset_ms
        start = timestamp - timestamp % size_ms
        if start + size_ms + grace_ms <= stream_time[partition]:
            late.append(record)
            continue
        reordered += timestamp < stream_time[partition]
        stream_time[partition] = max(stream_time[partition], timestamp)
        window = (record.key, start)
        values[window] = fold_window(values.get(window, {"count": 0, "sum": 0}), record.value)
        latest[window] = max(latest.get(window, timestamp), timestamp)
    finals: dict[tuple[str, int], dict[str, int]] = {}
    still_open: set[tuple[str, int]] = set()
    for window, value in values.items():
        if window[1] + size_ms + grace_ms <= stream_time[partition_of(window[0], partitions)]:
            finals[window] = value
        else:
            still_open.add(window)
    return WindowExpectations(finals, {window: latest[window] for window in finals}, still_open, late, reordered)


def partition_of(key: str, partitions: int) -> int:
    """Where Kafka's default partitioner puts ``key``: the generator writes there explicitly."""
    return default_partition(key.encode(), partitions)


class InputWriter:
    """Writes ``records`` to ``topic`` at ``rate`` records/s with an idempotent acks=all producer.

    ``acked`` counts the input records the broker confirmed, so the runner can time its
    kills against the progress of the input. ``rate`` may be changed while it runs: the
    runner slows the input down so that it still flows when the last kill comes. The
    ``table`` rows go to ``table_topic`` ``TABLE_LEAD_MS`` of event time ahead: before the
    input records of a tick are sent, every table row up to their nominal time plus the
    lead is acknowledged.
    """

    def __init__(self, bootstrap: str, topic: str, records: list[InputRecord], partitions: int, *,
                 rate: float, base_timestamp_ms: int, table_topic: str | None = None,
                 table: list[TableRow] | None = None, tick_s: float = 0.02) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if bool(table) and table_topic is None:
            raise ValueError("table rows need a table_topic")
        self.bootstrap = bootstrap
        self.topic = topic
        self.records = records
        self.partitions = partitions
        self.rate = rate
        self.base_timestamp_ms = base_timestamp_ms
        self.table_topic = table_topic
        self.table = table or []
        self.tick_s = tick_s
        self.acked = 0
        self.table_acked = 0

    @property
    def done(self) -> bool:
        return self.acked == len(self.records)

    @property
    def remaining(self) -> int:
        return len(self.records) - self.acked

    async def run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                    linger_ms=5, request_timeout_ms=30_000, client_id="chaos-generator")
        await producer.start()
        try:
            sent = 0
            credit = 1.0
            last = time.monotonic()
            while sent < len(self.records):
                now = time.monotonic()
                credit += (now - last) * self.rate  # whole records are sent, fractions carry over
                last = now
                due = min(len(self.records), sent + int(credit))
                credit -= due - sent
                if due > sent:
                    await self._write_table(producer, (due - 1) * TICK_MS + TABLE_LEAD_MS)
                    await self._write(producer, self.topic, self.records[sent:due])
                    sent = self.acked = due
                await asyncio.sleep(self.tick_s)  # pacing only: the rate spreads the input over the kills
            await self._write_table(producer, len(self.records) * TICK_MS + TABLE_LEAD_MS)
        finally:
            await producer.stop()

    async def _write_table(self, producer: AIOKafkaProducer, up_to_offset_ms: int) -> None:
        """Send and await every table row below ``up_to_offset_ms`` not yet written."""
        end = self.table_acked
        while end < len(self.table) and self.table[end].ts_offset_ms < up_to_offset_ms:
            end += 1
        if end > self.table_acked:
            assert self.table_topic is not None
            await self._write(producer, self.table_topic, self.table[self.table_acked:end])
            self.table_acked = end

    async def _write(self, producer: AIOKafkaProducer, topic: str, rows: list[InputRecord] | list[TableRow]) -> None:
        """Send ``rows`` to their keys' partitions and wait until the broker acknowledged all of them."""
        deliveries: list[asyncio.Future[Any]] = []
        for row in rows:
            deliveries.append(await producer.send(
                topic,
                value=row.payload,
                key=row.key_bytes,
                partition=partition_of(row.key, self.partitions),
                timestamp_ms=self.base_timestamp_ms + row.ts_offset_ms,
            ))
        await asyncio.gather(*deliveries)


def main(argv: list[str] | None = None) -> None:
    """Write a run's input by hand (the runner normally does this itself)."""
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.generator", description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True, help="partition count of --topic")
    parser.add_argument("--table-topic", default=None, help="also write the table rows here (same partitions)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--rate", type=float, default=2_000.0, help="records per second")
    parser.add_argument("--base-timestamp-ms", type=int, default=None, help="default: now")
    args = parser.parse_args(argv)
    records = generate_input(args.seed, args.records, args.keys)
    base = args.base_timestamp_ms if args.base_timestamp_ms is not None else int(time.time() * 1000)
    table = generate_table(args.seed, records, args.keys) if args.table_topic else None
    writer = InputWriter(args.bootstrap, args.topic, records, args.partitions, rate=args.rate, base_timestamp_ms=base,
                         table_topic=args.table_topic, table=table)
    asyncio.run(writer.run())
    print(f"wrote {writer.acked} records to {args.topic} (base timestamp {base})")


if __name__ == "__main__":
    main()
