"""TxnOffsetCommit v3 (KIP-447) for aiokafka's transactional producer.

aiokafka 0.14 adds a transaction's input offsets with TxnOffsetCommit v0, which names
only the group. Version 3 also carries the consumer's group metadata (generation id,
member id, group instance id), so the group coordinator refuses the offsets of a member
that the group has moved on without: a zombie that lost its partitions cannot commit
them, whatever transactional id it writes with. That is what lets one transactional
producer per worker be safe (exactly_once_v2), where without it every task needs a
transactional id of its own for fencing.

``send_offsets_to_transaction`` does what the producer's own method does, with v3:
AddOffsetsToTxn to the transaction coordinator (aiokafka's request), then the offsets
to the group coordinator, both through the producer's client and the coordinators its
sender found. The producer's transaction manager is told the group was added, so
EndTxn commits or aborts the offsets with the records.

The other half of KIP-447 is on the reading side: a task that moves to another worker
must start from the offsets its last owner's transaction committed, and those become
visible only once the transaction's markers are written, a moment after the commit
returned. ``fetch_stable_offsets`` asks with OffsetFetch v7's ``require_stable``, so the
group coordinator answers UNSTABLE_OFFSET_COMMIT (retried) while such a commit is pending.
(Under v1 the next owner's InitProducerId for the task's transactional id waits for the
old transaction to complete, so reading afterwards is enough.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.client import ConnectionGroup, CoordinationType
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.transaction import AddOffsetsToTxnRequest
from aiokafka.protocol.types import Boolean, CompactArray, CompactString, Int16, Int32, Int64, Schema, TaggedFields

from streamer.errors import GroupFencedError, UnsupportedBrokerError

API_KEY = 28
VERSION = 3
OFFSET_FETCH_KEY, OFFSET_FETCH_VERSION = 9, 7
#: The group holds a transactional commit of the partition not yet completed.
UNSTABLE_OFFSET_COMMIT = 88
#: Error codes the group coordinator answers a member of an older generation with.
ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID = 22, 25, 82
#: Error codes of a producer whose epoch a newer one with the same transactional id took.
INVALID_PRODUCER_EPOCH, PRODUCER_FENCED = 47, 90
#: Retried after a backoff; the coordinator ones after looking the coordinator up again.
_COORDINATOR_MOVED = (7, 15, 16)  # REQUEST_TIMED_OUT, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
_RETRIABLE = (3, 14, 51)  # UNKNOWN_TOPIC_OR_PARTITION, COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS
_GENERATION_ERRORS = (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID)
#: A coordinator that could not be reached (its broker was killed, say): looked up again, then retried.
_UNREACHABLE = (kafka_errors.NodeNotReadyError, kafka_errors.KafkaConnectionError, kafka_errors.RequestTimedOutError)
_PRODUCER_ERRORS = (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED)

#: input partition -> (next offset to read, offset metadata)
Offsets: TypeAlias = Mapping[TopicPartition, tuple[int, str]]


class TxnOffsetCommitResponse_v3(Response):
    API_KEY = API_KEY
    API_VERSION = VERSION
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(("partition_index", Int32), ("error_code", Int16), ("tags", TaggedFields))),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class TxnOffsetCommitRequest_v3(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = API_KEY
    API_VERSION = VERSION
    RESPONSE_TYPE = TxnOffsetCommitResponse_v3
    SCHEMA = Schema(
        ("transactional_id", CompactString("utf-8")),
        ("group_id", CompactString("utf-8")),
        ("producer_id", Int64),
        ("producer_epoch", Int16),
        ("generation_id", Int32),
        ("member_id", CompactString("utf-8")),
        ("group_instance_id", CompactString("utf-8")),  # null: no static membership
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32),
                ("committed_offset", Int64),
                ("committed_leader_epoch", Int32),
                ("committed_metadata", CompactString("utf-8")),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class OffsetFetchResponse_v7(Response):
    API_KEY = OFFSET_FETCH_KEY
    API_VERSION = OFFSET_FETCH_VERSION
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32),
                ("committed_offset", Int64),
                ("committed_leader_epoch", Int32),
                ("metadata", CompactString("utf-8")),
                ("error_code", Int16),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("error_code", Int16),
        ("tags", TaggedFields),
    )


class OffsetFetchRequest_v7(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = OFFSET_FETCH_KEY
    API_VERSION = OFFSET_FETCH_VERSION
    RESPONSE_TYPE = OffsetFetchResponse_v7
    SCHEMA = Schema(
        ("group_id", CompactString("utf-8")),
        ("topics", CompactArray(("name", CompactString("utf-8")), ("partition_indexes", CompactArray(Int32)),
                                ("tags", TaggedFields))),
        ("require_stable", Boolean),
        ("tags", TaggedFields),
    )


class StableOffsetFetchRequest(Request[OffsetFetchRequest_v7]):
    """Committed offsets, refused (UNSTABLE_OFFSET_COMMIT) while a transaction commits some of them."""

    API_KEY = OFFSET_FETCH_KEY

    def __init__(self, group_id: str, partitions: list[TopicPartition]) -> None:
        self.group_id = group_id
        by_topic: dict[str, list[int]] = {}
        for tp in sorted(partitions):
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        no_tags: dict[int, bytes] = {}
        self.topics = [(topic, indexes, no_tags) for topic, indexes in by_topic.items()]

    def build(self, request_struct_class: type[OffsetFetchRequest_v7]) -> OffsetFetchRequest_v7:
        return request_struct_class(self.group_id, self.topics, True, {})


@dataclass(frozen=True)
class GroupMetadata:
    """What the group coordinator checks a transaction's offsets against (Kafka's ConsumerGroupMetadata)."""

    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None = None

    @classmethod
    def of(cls, consumer: AIOKafkaConsumer) -> GroupMetadata:
        """The consumer's current generation and member id, as its group coordinator last told it.

        None of a consumer the group dropped: aiokafka resets them (generation -1, no member id)
        before it calls the revocation listener, and the coordinator takes offsets carrying those
        for a commit from outside the group, unfenced: a zombie's last commit would go through.
        """
        coordinator: Any = consumer._coordinator
        if coordinator is None:
            raise GroupFencedError("the consumer has not joined its group; it cannot commit offsets yet")
        if coordinator.generation < 0 or not coordinator.member_id:
            raise GroupFencedError(f"the consumer is no member of group {coordinator.group_id} (it was dropped "
                                   "and rejoins): its tasks' work is not committed")
        return cls(coordinator.group_id, coordinator.generation, coordinator.member_id,
                   coordinator._group_instance_id)


class TxnOffsetCommitRequest(Request[TxnOffsetCommitRequest_v3]):
    """Offsets for a transaction with the group metadata; only v3 is built (the broker must offer it)."""

    API_KEY = API_KEY

    def __init__(self, transactional_id: str, producer_id: int, producer_epoch: int, group: GroupMetadata,
                 offsets: Offsets) -> None:
        self.transactional_id = transactional_id
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.group = group
        by_topic: dict[str, list[tuple[int, int, int, str, dict[int, bytes]]]] = {}
        for tp, (offset, metadata) in sorted(offsets.items()):
            by_topic.setdefault(tp.topic, []).append((tp.partition, offset, -1, metadata, {}))
        no_tags: dict[int, bytes] = {}
        self.topics = [(topic, partitions, no_tags) for topic, partitions in by_topic.items()]

    def build(self, request_struct_class: type[TxnOffsetCommitRequest_v3]) -> TxnOffsetCommitRequest_v3:
        group = self.group
        return request_struct_class(self.transactional_id, group.group_id, self.producer_id, self.producer_epoch,
                                    group.generation_id, group.member_id, group.group_instance_id, self.topics, {})


def _raise_for(code: int, what: str, group: GroupMetadata) -> None:
    """Turn a refusal into the error the commit path acts on."""
    if code in _GENERATION_ERRORS:
        raise GroupFencedError(
            f"{what} refused with {kafka_errors.for_code(code).__name__} (error {code}): group {group.group_id} "
            f"has moved on from generation {group.generation_id} of member {group.member_id}"
        )
    if code in _PRODUCER_ERRORS:
        raise kafka_errors.ProducerFenced()
    raise kafka_errors.for_code(code)(f"{what} failed with error {code}")


async def _send(producer: AIOKafkaProducer, coordinator: CoordinationType, key: str,
                request: Request[Any]) -> Any | None:
    """Send to the producer's coordinator of that type (looked up, and cached, by its sender).

    None if it could not be reached: it is marked dead, so the caller's retry looks it up again
    (aiokafka's own transaction requests do the same).
    """
    sender: Any = producer._sender
    node = await sender._find_coordinator(coordinator, key)
    try:
        return await producer.client.send(node, request, group=ConnectionGroup.COORDINATION)
    except _UNREACHABLE:
        sender._coordinator_dead(coordinator)
        return None
    except (NotImplementedError, kafka_errors.IncompatibleBrokerVersion) as error:
        raise UnsupportedBrokerError(
            f"the broker does not offer {type(request).__name__} v{VERSION} ({error}); exactly_once_v2 needs "
            "Kafka 2.5 or newer: upgrade the broker or set processing_guarantee to exactly_once"
        ) from None


async def send_offsets_to_transaction(producer: AIOKafkaProducer, offsets: Offsets, group: GroupMetadata,
                                      timeout: float = 30.0) -> None:
    """Add ``offsets`` to the producer's open transaction, fenced by ``group``'s generation.

    Raises GroupFencedError when the group coordinator no longer knows this member or
    generation, ProducerFenced when a newer producer took the transactional id, and the
    broker's error for anything else it refuses; retriable answers are retried until
    ``timeout`` seconds passed.
    """
    txn: Any = producer._txn_manager
    if txn is None or not txn.is_in_transaction():
        raise kafka_errors.IllegalOperation("offsets go into an open transaction: begin one first")
    sender: Any = producer._sender
    async with asyncio.timeout(timeout):
        if txn._txn_consumer_group != group.group_id:
            await _add_group(producer, txn, group)
        if offsets:
            await _commit_offsets(producer, txn, group, offsets, sender._retry_backoff)


async def _add_group(producer: AIOKafkaProducer, txn: Any, group: GroupMetadata) -> None:
    """AddOffsetsToTxn: the transaction coordinator will end the group's offsets with the transaction."""
    sender: Any = producer._sender
    while True:
        request = AddOffsetsToTxnRequest(txn.transactional_id, txn.producer_id, txn.producer_epoch, group.group_id)
        response = await _send(producer, CoordinationType.TRANSACTION, txn.transactional_id, request)
        if response is not None:  # None: unreachable, looked up again
            code = response.error_code
            if code == 0:
                txn.consumer_group_added(group.group_id)
                return
            if code in _COORDINATOR_MOVED:
                sender._coordinator_dead(CoordinationType.TRANSACTION)
            elif code not in _RETRIABLE:
                _raise_for(code, "AddOffsetsToTxn", group)
        await asyncio.sleep(sender._retry_backoff)


async def _commit_offsets(producer: AIOKafkaProducer, txn: Any, group: GroupMetadata, offsets: Offsets,
                          backoff: float) -> None:
    """TxnOffsetCommit v3 to the group coordinator, until every partition is taken or one is refused."""
    sender: Any = producer._sender
    pending = dict(offsets)
    while pending:
        request = TxnOffsetCommitRequest(txn.transactional_id, txn.producer_id, txn.producer_epoch, group, pending)
        response = await _send(producer, CoordinationType.GROUP, group.group_id, request)
        for topic, partitions, _ in response.topics if response is not None else ():
            for partition, code, _ in partitions:
                tp = TopicPartition(topic, partition)
                if code == 0:
                    pending.pop(tp, None)
                elif code in _COORDINATOR_MOVED:
                    sender._coordinator_dead(CoordinationType.GROUP)
                elif code not in _RETRIABLE:
                    _raise_for(code, f"TxnOffsetCommit of {tp.topic}[{tp.partition}]", group)
        if pending:  # retriable, or left out of the answer: ask again for what is left
            await asyncio.sleep(backoff)


async def check_broker_supports(producer: AIOKafkaProducer) -> None:
    """Raise UnsupportedBrokerError unless the broker offers TxnOffsetCommit v3 and OffsetFetch v7."""
    client: Any = producer.client
    connection = await client._get_conn(client.get_random_node())
    versions = getattr(connection, "_versions", {}) if connection is not None else {}
    for name, key, version in (("TxnOffsetCommit", API_KEY, VERSION),
                               ("OffsetFetch", OFFSET_FETCH_KEY, OFFSET_FETCH_VERSION)):
        low, high = versions.get(key, (0, -1))
        if not low <= version <= high:
            raise UnsupportedBrokerError(
                f"the broker offers {name} versions {low}-{high}, not {version}: exactly_once_v2 needs "
                "Kafka 2.5 or newer; upgrade the broker or set processing_guarantee to exactly_once"
            )


async def fetch_stable_offsets(consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
                               timeout: float = 60.0) -> dict[TopicPartition, tuple[int, str | None]]:
    """The group's committed (offset, metadata) of ``partitions``, once no transaction still commits them.

    Partitions without a committed offset are left out. Retries while a commit is pending, the coordinator
    loads or moves, until ``timeout`` seconds passed.
    """
    coordinator: Any = consumer._coordinator
    backoff = coordinator._retry_backoff_ms / 1000
    found: dict[TopicPartition, tuple[int, str | None]] = {}
    answered: set[TopicPartition] = set()
    pending = list(partitions)
    async with asyncio.timeout(timeout):
        while pending:
            await coordinator.ensure_coordinator_known()
            try:
                response = await coordinator._send_req(StableOffsetFetchRequest(coordinator.group_id, pending))
            except (NotImplementedError, kafka_errors.IncompatibleBrokerVersion) as error:
                raise UnsupportedBrokerError(
                    f"the broker does not offer OffsetFetch v{OFFSET_FETCH_VERSION} ({error}); exactly_once_v2 "
                    "needs Kafka 2.5 or newer: upgrade the broker or set processing_guarantee to exactly_once"
                ) from None
            except kafka_errors.KafkaError as error:
                if not error.retriable:
                    raise
                await asyncio.sleep(backoff)
                continue
            if response.error_code in _COORDINATOR_MOVED:
                coordinator.coordinator_dead()
            elif response.error_code not in (0, *_RETRIABLE):
                raise kafka_errors.for_code(response.error_code)(f"OffsetFetch of group {coordinator.group_id}")
            for topic, topic_partitions, _ in response.topics:
                for partition, offset, _, metadata, code, _ in topic_partitions:
                    tp = TopicPartition(topic, partition)
                    if code == 0:
                        answered.add(tp)
                        if offset >= 0:
                            found[tp] = (offset, metadata)
                    elif code in _COORDINATOR_MOVED:
                        coordinator.coordinator_dead()
                    elif code not in (UNSTABLE_OFFSET_COMMIT, *_RETRIABLE):
                        raise kafka_errors.for_code(code)(f"OffsetFetch of {topic}[{partition}] failed")
            pending = [tp for tp in pending if tp not in answered]
            if pending:
                await asyncio.sleep(backoff)
    return found
