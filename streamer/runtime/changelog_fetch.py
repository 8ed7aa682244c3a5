"""A restore-only read path: FetchRequests for changelog partitions, record batches decoded here.

Restoring spends most of its time turning fetched bytes into records. The consumer's
fetcher builds a ``ConsumerRecord`` in Python for every record (and runs a generator
step for each); a restore needs only keys, values and the offset it reaches. This
reader sends FetchRequests through the restore consumer's client (its connections,
metadata and negotiated versions), frames and checks each record batch with aiokafka's
batch readers, and takes its ``(key, value)`` pairs a batch at a time: in C
(``streamer/_native/records.c``) for uncompressed batches, else through aiokafka's
record iteration.

Read-committed is kept as the Kafka consumer keeps it: control batches are never
records; under ``read_committed`` the broker sends up to the last stable offset and
lists the aborted transactions of the range (producer id, first offset), and a
transactional batch is dropped while its producer has an aborted transaction open at
that point (from the transaction's first offset until its abort marker). Offsets may
have gaps (compaction): a partition's position moves to the end of the last batch read,
not past its last record. Nothing at or beyond a partition's end offset (taken when its
restore began) is returned, and a batch that starts before the position (a fetch lands
on a batch's first offset) yields only its records from the position on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from streamer.errors import StateStoreError
from streamer.state.store import Entry

_NativeEntries = Callable[[bytes, int, int, int], list[tuple[bytes | None, bytes | None]]]


def _compiled() -> _NativeEntries | None:
    try:
        import streamer._native.records as native
    except ImportError:  # installed without a C compiler: aiokafka's reader takes every batch
        return None
    return native.entries


_native_entries = _compiled()

log = logging.getLogger("streamer.restore")

#: Bytes per partition and per request of one fetch: large, since a restore reads all of a partition.
PARTITION_FETCH_BYTES = 8 * 1_048_576
REQUEST_FETCH_BYTES = 32 * 1_048_576
#: How long the broker may hold a fetch that has nothing yet.
FETCH_MAX_WAIT_MS = 500
#: Pause before fetching again from a broker that failed or a partition without a leader.
RETRY_BACKOFF_S = 0.1

_READ_UNCOMMITTED, _READ_COMMITTED = 0, 1
#: The control record type of an abort marker (a control record's key: version, then type, both int16).
_ABORT_MARKER = 0
#: Fetch v4 brought isolation levels and the aborted transactions list.
_FIRST_TRANSACTIONAL_FETCH = 4
#: A batch's framing: base offset (int64), then the length (int32) of the rest.
_BATCH_LENGTH = struct.Struct(">i")
_LOG_OVERHEAD = 12
#: Format v2: the record count (int32) ends the batch header; the records follow.
_V2_COUNT_AT, _V2_HEADER = 57, 61


@dataclass(slots=True)
class ChangelogFetch:
    """The records of one partition's fetch in offset order, and the position after them."""

    tp: TopicPartition
    entries: list[Entry]
    next_offset: int
    #: the log no longer held the position asked for (its start moved past it): reading
    #: goes on from the log start, ``next_offset``, and what came before it is gone
    restarted: bool = False


@dataclass(slots=True)
class _Partition:
    position: int
    end: int


class ChangelogReader:
    """Reads changelog partitions from their positions up to their end offsets, one fetch per leader at a time."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        # aiokafka (pinned) has no public handle on these: the consumer's client and isolation level
        # are what the restore must share, so that end offsets and fetches see the same data.
        self._consumer = consumer
        self._client = consumer._client
        isolation: str = consumer._isolation_level
        self._read_committed = isolation == "read_committed"
        self._partitions: dict[TopicPartition, _Partition] = {}

    def add(self, tp: TopicPartition, position: int, end: int) -> None:
        """Read ``tp`` from ``position`` until ``end``."""
        self._client.add_topic(tp.topic)
        self._partitions[tp] = _Partition(position, end)

    def remove(self, tp: TopicPartition) -> None:
        self._partitions.pop(tp, None)

    def position(self, tp: TopicPartition) -> int:
        return self._partitions[tp].position

    def done(self, tp: TopicPartition) -> bool:
        partition = self._partitions[tp]
        return partition.position >= partition.end

    async def fetch(self) -> list[ChangelogFetch]:
        """One fetch from every leader of a partition still short of its end; what each partition got."""
        by_node: dict[int, list[tuple[TopicPartition, int]]] = {}
        leaderless = False
        tracked = list(self._partitions.items())
        random.shuffle(tracked)  # a request's byte limit favours its first partitions: let each come first
        for tp, partition in tracked:
            if partition.position >= partition.end:
                continue
            node = self._client.cluster.leader_for_partition(tp)
            if node is None or node == -1:
                leaderless = True
            else:
                by_node.setdefault(node, []).append((tp, partition.position))
        if leaderless:
            self._client.force_metadata_update()
        if not by_node:
            await asyncio.sleep(RETRY_BACKOFF_S)
            return []
        responses = await asyncio.gather(*(self._fetch_from(node, asked) for node, asked in by_node.items()))
        return [fetched for response in responses for fetched in response]

    async def _fetch_from(self, node: int, asked: list[tuple[TopicPartition, int]]) -> list[ChangelogFetch]:
        topics: dict[str, list[tuple[int, int, int]]] = {}
        for tp, position in asked:
            topics.setdefault(tp.topic, []).append((tp.partition, position, PARTITION_FETCH_BYTES))
        request = FetchRequest(FETCH_MAX_WAIT_MS, 1, REQUEST_FETCH_BYTES,
                               _READ_COMMITTED if self._read_committed else _READ_UNCOMMITTED, list(topics.items()))
        try:
            response = await self._client.send(node, request)
        except kafka_errors.KafkaError as error:  # connection lost, timed out: ask again after a pause
            log.warning("restore fetch from broker %d failed (%r); retrying", node, error)
            self._client.force_metadata_update()
            await asyncio.sleep(RETRY_BACKOFF_S)
            return []
        if response.API_VERSION < _FIRST_TRANSACTIONAL_FETCH and self._read_committed:
            raise StateStoreError(f"broker {node} answered a read_committed fetch with Fetch v{response.API_VERSION}, "
                                  "which has no isolation levels")
        asked_at = dict(asked)
        fetched: list[ChangelogFetch] = []
        for topic, partitions in response.topics:
            for partition_number, error_code, _highwater, *rest in partitions:
                tp = TopicPartition(topic, partition_number)
                state = self._partitions.get(tp)
                if state is None or state.position != asked_at.get(tp):
                    continue  # removed or moved while the fetch was out
                if error_code:
                    restarted = await self._fetch_failed(tp, error_code)
                    if restarted is not None:
                        fetched.append(restarted)
                    continue
                aborted = rest[2] if response.API_VERSION >= 11 else rest[-2] if len(rest) > 1 else None
                result = self._decode(tp, state, rest[-1], aborted)
                if result is not None:
                    fetched.append(result)
        return fetched

    async def _fetch_failed(self, tp: TopicPartition, error_code: int) -> ChangelogFetch | None:
        """Retry later, or move to the log start of a partition whose start moved past the position (that fetch)."""
        error = kafka_errors.for_code(error_code)
        if error is kafka_errors.OffsetOutOfRangeError:  # retention or deleted records: only the log start is left
            start = (await self._consumer.beginning_offsets([tp]))[tp]
            state = self._partitions.get(tp)
            if state is not None:
                state.position = start
                return ChangelogFetch(tp, [], start, restarted=True)
        elif error.retriable:
            self._client.force_metadata_update()
        else:
            raise StateStoreError(f"restore fetch of {tp} failed: {error.__name__}")
        return None

    def _decode(self, tp: TopicPartition, state: _Partition, data: bytes,
                aborted: Iterable[tuple[int, int]] | None) -> ChangelogFetch | None:
        """The records of one partition's response; moves its position to the end of the last batch read."""
        position, end = state.position, state.end
        records = MemoryRecords(data)
        cursor = 0  # where the batch ``records`` returns next starts in ``data``
        pending = sorted(aborted or (), key=lambda transaction: transaction[1])
        open_aborts: set[int] = set()
        entries: list[Entry] = []
        read = False
        while position < end and records.has_next():
            batch = records.next_batch()
            start, cursor = cursor, cursor + _LOG_OVERHEAD + _BATCH_LENGTH.unpack_from(data, cursor + 8)[0]
            if batch.next_offset <= position:
                continue
            read = True
            if not batch.validate_crc():
                raise StateStoreError(f"restore of {tp}: a record batch at offset {batch.base_offset} fails its CRC")
            last = batch.next_offset - 1
            if self._read_committed:
                while pending and pending[0][1] <= last:
                    open_aborts.add(pending.pop(0)[0])
            if batch.is_control_batch:
                if self._read_committed and _control_type(batch) == _ABORT_MARKER:
                    open_aborts.discard(batch.producer_id)
            elif not (self._read_committed and batch.is_transactional and batch.producer_id in open_aborts):
                if batch.base_offset >= position and batch.next_offset <= end:
                    entries += _batch_entries(batch, data, start, cursor)
                else:  # the fetch began inside this batch, or the end offset falls inside it
                    entries += [(record.key, record.value) for record in batch if position <= record.offset < end]
            position = min(batch.next_offset, end)
        if not read:  # nothing new, or only part of a batch too large for this fetch (the broker sends it whole
            return None  # once its partition comes first in a request)
        state.position = position
        return ChangelogFetch(tp, entries, position)


def _batch_entries(batch: Any, data: bytes, start: int, stop: int) -> list[Entry]:
    """All (key, value) of the batch in ``data[start:stop]``: in C when it is uncompressed and of format v2.

    Typed as entries: a changelog's records have keys; records without (global topics) are
    skipped by the global store's writer.
    """
    if _native_entries is not None and batch.magic == 2 and batch.compression_type == 0:
        count: int = _BATCH_LENGTH.unpack_from(data, start + _V2_COUNT_AT)[0]
        return cast(list[Entry], _native_entries(data, start + _V2_HEADER, stop, count))
    return [(record.key, record.value) for record in batch]


def _control_type(batch: Any) -> int:
    """A control batch's marker type (abort or commit), from its one record's key."""
    for record in batch:
        key: bytes = record.key
        return int.from_bytes(key[2:4], "big")
    raise StateStoreError(f"control batch at offset {batch.base_offset} has no record")
