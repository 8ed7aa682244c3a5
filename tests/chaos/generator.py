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
"""

from __future__ import annotations

import argparse
import asyncio
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

    ``acked`` counts the records the broker confirmed, so the runner can time its kills
    against the progress of the input. ``rate`` may be changed while it runs: the runner
    slows the input down so that it still flows when the last kill comes.
    """

    def __init__(self, bootstrap: str, topic: str, records: list[InputRecord], partitions: int, *,
                 rate: float, base_timestamp_ms: int, tick_s: float = 0.02) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.bootstrap = bootstrap
        self.topic = topic
        self.records = records
        self.partitions = partitions
        self.rate = rate
        self.base_timestamp_ms = base_timestamp_ms
        self.tick_s = tick_s
        self.acked = 0

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
                deliveries = [await self._send(producer, record) for record in self.records[sent:due]]
                sent = due
                if deliveries:
                    await asyncio.gather(*deliveries)
                    self.acked = sent
                await asyncio.sleep(self.tick_s)  # pacing only: the rate spreads the input over the kills
        finally:
            await producer.stop()

    async def _send(self, producer: AIOKafkaProducer, record: InputRecord) -> asyncio.Future[Any]:
        delivery: asyncio.Future[Any] = await producer.send(
            self.topic,
            value=record.payload,
            key=record.key_bytes,
            partition=partition_of(record.key, self.partitions),
            timestamp_ms=self.base_timestamp_ms + record.ts_offset_ms,
        )
        return delivery


def main(argv: list[str] | None = None) -> None:
    """Write a run's input by hand (the runner normally does this itself)."""
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.generator", description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True, help="partition count of --topic")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--rate", type=float, default=2_000.0, help="records per second")
    parser.add_argument("--base-timestamp-ms", type=int, default=None, help="default: now")
    args = parser.parse_args(argv)
    records = generate_input(args.seed, args.records, args.keys)
    base = args.base_timestamp_ms if args.base_timestamp_ms is not None else int(time.time() * 1000)
    writer = InputWriter(args.bootstrap, args.topic, records, args.partitions, rate=args.rate, base_timestamp_ms=base)
    asyncio.run(writer.run())
    print(f"wrote {writer.acked} records to {args.topic} (base timestamp {base})")


if __name__ == "__main__":
    main()
