"""The ceiling: the benchmark workloads as a bare aiokafka loop, with no framework at all.

    python -m benchmarks.contenders.ceiling        (configured by BENCH_* variables)

What a hand-written loop can reach on this machine: ``getmany`` fetches, orjson, records
appended straight into per-partition batches (``create_batch``/``send_batch``), the output
partition taken from the input partition (both topics have the same partition count),
counts in a plain dict with a changelog topic beside it. The windowed counts keep one dict
per open window and partition, advance stream time per record, drop a window once stream
time reaches its end (emitting its final counts, on close) and a record whose window has
closed; per batch, like the rest. The enrich workload first reads the whole table topic
into a dict (parsed rows by key), then joins each record with its key's row. Offsets are
committed every commit interval after the produce acks (at-least-once), or inside one
transaction per commit interval with the offsets sent to it (exactly-once).
"""

from __future__ import annotations

import asyncio
import signal
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from benchmarks.contenders.spec import COUNT_STORE, WINDOW_MS, AppSpec, enrich, enrich_with, keep

MAX_RECORDS = 10_000
CONSUMER_OPTIONS = {"isolation_level": "read_committed", "max_partition_fetch_bytes": 4 * 1_048_576,
                    "fetch_max_bytes": 32 * 1_048_576}
#: Below the broker's default message.max.bytes (1 MiB) with room for the batch header.
BATCH_BYTES = 512 * 1024
#: A window store's changelog as Kafka Streams makes it: compacted, and deleted after a day.
WINDOW_CHANGELOG = {"cleanup.policy": "compact,delete", "retention.ms": str(WINDOW_MS + 86_400_000)}


class PartitionWriter:
    """Fills one produce batch per topic-partition and hands full ones to the producer."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, partition: int) -> None:
        self.producer, self.topic, self.partition = producer, topic, partition
        self.batch = producer.create_batch()
        self.full: list[object] = []
        self.count = 0

    def append(self, key: bytes | None, value: bytes) -> None:
        if self.batch.append(key=key, value=value, timestamp=None) is None:
            self.full.append(self.batch)
            self.batch = self.producer.create_batch()
            self.batch.append(key=key, value=value, timestamp=None)
        self.count += 1

    async def send(self) -> list[asyncio.Future[object]]:
        """Submit every batch filled so far; returns the futures of their acks."""
        if self.count:
            self.full.append(self.batch)
        acks = [await self.producer.send_batch(batch, self.topic, partition=self.partition) for batch in self.full]
        self.batch, self.full, self.count = self.producer.create_batch(), [], 0
        return acks


class Ceiling:
    """Consume, transform, produce, commit; stops cleanly on SIGTERM."""

    def __init__(self, spec: AppSpec) -> None:
        self.spec = spec
        self.changelog = f"{spec.app_id}-{COUNT_STORE}-changelog"
        self.counts: dict[bytes | None, int] = {}
        #: Per partition: the open windows' counts by window start, and the stream time.
        self.windows: dict[int, dict[int, dict[bytes, int]]] = {}
        self.stream_time: dict[int, int] = {}
        self.table: dict[bytes | None, dict[str, object]] = {}
        self.stopping = asyncio.Event()
        options = {"bootstrap_servers": spec.bootstrap}
        self.consumer = AIOKafkaConsumer(spec.input, group_id=spec.app_id, enable_auto_commit=False,
                                         auto_offset_reset="earliest", **CONSUMER_OPTIONS, **options)
        self.producer = AIOKafkaProducer(
            acks="all", max_batch_size=BATCH_BYTES, linger_ms=0, enable_idempotence=spec.exactly_once,
            transactional_id=f"{spec.app_id}-ceiling" if spec.exactly_once else None, **options)

    async def create_changelog(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.spec.bootstrap)
        await admin.start()
        try:
            configs = {"cleanup.policy": "compact"} if self.spec.workload == "count" else WINDOW_CHANGELOG
            await admin.create_topics([NewTopic(self.changelog, self.spec.partitions, 1, topic_configs=configs)])
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()

    def transform(self, partition: int, records: list[ConsumerRecord[bytes, bytes]], out: PartitionWriter,
                  log: PartitionWriter) -> None:
        workload = self.spec.workload
        if workload == "stateless":
            for record in records:
                value = orjson.loads(record.value)
                if keep(value):
                    out.append(record.key, orjson.dumps(enrich(value)))
        elif workload == "enrich":
            table = self.table
            for record in records:
                row = table.get(record.key)
                if row is not None:  # an inner join
                    out.append(record.key, orjson.dumps(enrich_with(orjson.loads(record.value), row)))
        elif workload == "count":
            self.count(records, out, log)
        else:
            self.count_windows(partition, records, out, log, on_close=workload == "windowed-close")

    def count(self, records: list[ConsumerRecord[bytes, bytes]], out: PartitionWriter, log: PartitionWriter) -> None:
        counts = self.counts
        for record in records:
            orjson.loads(record.value)  # every peer parses the value
            count = counts.get(record.key, 0) + 1
            counts[record.key] = count
            encoded = b"%d" % count
            out.append(record.key, encoded)
            log.append(record.key, encoded)

    def count_windows(self, partition: int, records: list[ConsumerRecord[bytes, bytes]], out: PartitionWriter,
                      log: PartitionWriter, on_close: bool) -> None:
        """Tumbling counts keyed ``key@start``: every update out, or each window's final counts."""
        windows = self.windows.setdefault(partition, {})
        stream_time = self.stream_time.get(partition, -1)
        for record in records:
            orjson.loads(record.value)  # every peer parses the value
            timestamp = record.timestamp
            if timestamp > stream_time:
                stream_time = timestamp
            start = timestamp - timestamp % WINDOW_MS
            if start + WINDOW_MS <= stream_time:
                continue  # late: its window has closed (no grace)
            counts = windows.get(start)
            if counts is None:
                counts = windows[start] = {}
            count = counts.get(record.key, 0) + 1
            counts[record.key] = count
            key = b"%s@%d" % (record.key, start)
            encoded = b"%d" % count
            log.append(key, encoded)
            if not on_close:
                out.append(key, encoded)
        self.stream_time[partition] = stream_time
        for start in sorted(s for s in windows if s + WINDOW_MS <= stream_time):
            closed = windows.pop(start)
            if on_close:
                for key_bytes, count in closed.items():
                    out.append(b"%s@%d" % (key_bytes, start), b"%d" % count)

    async def load_table(self) -> None:
        """Read the table topic from its start to its end offsets into ``self.table``."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.spec.bootstrap, group_id=None, enable_auto_commit=False,
                                    **CONSUMER_OPTIONS)
        await consumer.start()
        try:
            partitions = [TopicPartition(self.spec.table, p) for p in range(self.spec.partitions)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning()
            ends = await consumer.end_offsets(partitions)
            pending = {tp for tp, end in ends.items() if end > 0}
            while pending:
                for tp, records in (await consumer.getmany(*pending, timeout_ms=100)).items():
                    for record in records:
                        if record.value is None:
                            self.table.pop(record.key, None)
                        else:
                            self.table[record.key] = orjson.loads(record.value)
                    if records and records[-1].offset + 1 >= ends[tp]:
                        pending.discard(tp)
        finally:
            await consumer.stop()

    async def run(self) -> None:
        if self.spec.workload == "enrich":
            await self.load_table()
        elif self.spec.workload != "stateless":
            await self.create_changelog()
        await self.producer.start()
        await self.consumer.start()
        eos = self.spec.exactly_once
        interval = self.spec.commit_interval_ms / 1000
        writers: dict[int, tuple[PartitionWriter, PartitionWriter]] = {}
        offsets: dict[TopicPartition, int] = {}
        acks: list[asyncio.Future[object]] = []
        last_commit = time.monotonic()
        try:
            if eos:
                await self.producer.begin_transaction()
            while not self.stopping.is_set():
                fetched = await self.consumer.getmany(timeout_ms=100, max_records=MAX_RECORDS)
                for tp, records in fetched.items():
                    if tp.partition not in writers:
                        writers[tp.partition] = (PartitionWriter(self.producer, self.spec.output, tp.partition),
                                                 PartitionWriter(self.producer, self.changelog, tp.partition))
                    out, log = writers[tp.partition]
                    self.transform(tp.partition, records, out, log)
                    acks += await out.send()
                    acks += await log.send()
                    offsets[tp] = records[-1].offset + 1
                if offsets and time.monotonic() - last_commit >= interval:
                    await self.commit(offsets, acks)
                    offsets, acks, last_commit = {}, [], time.monotonic()
            if offsets:
                await self.commit(offsets, acks, final=True)
            elif eos:
                await self.producer.abort_transaction()
        finally:
            await self.consumer.stop()
            await self.producer.stop()

    async def commit(self, offsets: dict[TopicPartition, int], acks: list[asyncio.Future[object]],
                     final: bool = False) -> None:
        if self.spec.exactly_once:
            await self.producer.send_offsets_to_transaction(offsets, self.spec.app_id)
            await self.producer.commit_transaction()
            if not final:
                await self.producer.begin_transaction()
        else:
            await asyncio.gather(*acks)
            await self.consumer.commit(offsets)


async def main() -> None:
    ceiling = Ceiling(AppSpec.from_env())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, ceiling.stopping.set)
    await ceiling.run()


if __name__ == "__main__":
    asyncio.run(main())
