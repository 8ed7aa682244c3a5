"""TxnOffsetCommit v3 (streamer.runtime.txn_offsets): the request's wire form, and against the real
broker: offsets commit with the transaction, a member of an older generation is refused, and a
coordinator that cannot be reached is looked up again."""

from __future__ import annotations

import asyncio
import io
import uuid
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import CoordinationType

from streamer.errors import GroupFencedError
from streamer.runtime.txn_offsets import (
    GroupMetadata,
    OffsetFetchRequest_v7,
    StableOffsetFetchRequest,
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequest_v3,
    TxnOffsetCommitResponse_v3,
    check_broker_supports,
    fetch_stable_offsets,
    send_offsets_to_transaction,
)
from tests.kafka_helpers import wait_for

GROUP = GroupMetadata("app", 7, "member-1", None)


def _request(offsets: dict[TopicPartition, tuple[int, str]]) -> TxnOffsetCommitRequest:
    return TxnOffsetCommitRequest("app-0a1b", 4000, 3, GROUP, offsets)


def test_version_3_is_built_only_where_the_broker_offers_it() -> None:
    request = _request({TopicPartition("in", 0): (10, "t")})
    assert type(request.prepare({28: (0, 5)})) is TxnOffsetCommitRequest_v3
    with pytest.raises(NotImplementedError):
        request.prepare({28: (0, 2)})


def test_the_request_carries_the_group_metadata_in_the_flexible_encoding() -> None:
    offsets = {TopicPartition("b", 1): (5, "m1"), TopicPartition("a", 0): (9, ""), TopicPartition("b", 0): (2, "x")}
    struct = _request(offsets).prepare({28: (0, 3)})
    decoded = TxnOffsetCommitRequest_v3.SCHEMA.decode(io.BytesIO(struct.encode()))
    transactional_id, group_id, producer_id, epoch, generation, member, instance, topics, tags = decoded
    assert (transactional_id, group_id, producer_id, epoch) == ("app-0a1b", "app", 4000, 3)
    assert (generation, member, instance, tags) == (7, "member-1", None, {})
    assert [(name, [p[:4] for p in partitions]) for name, partitions, _ in topics] == [
        ("a", [(0, 9, -1, "")]), ("b", [(0, 2, -1, "x"), (1, 5, -1, "m1")])]
    assert struct.FLEXIBLE_VERSION and struct.API_VERSION == 3


def test_the_response_decodes_per_partition_errors() -> None:
    wire = TxnOffsetCommitResponse_v3.SCHEMA.encode((0, [("in", [(0, 0, {}), (1, 22, {})], {})], {}))
    throttle, topics, _ = TxnOffsetCommitResponse_v3.SCHEMA.decode(io.BytesIO(wire))
    assert throttle == 0 and [(p, code) for p, code, _ in topics[0][1]] == [(0, 0), (1, 22)]


def test_a_consumer_the_group_dropped_has_no_group_metadata_to_commit_with() -> None:
    # aiokafka resets the generation and member id before the revocation listener runs; offsets
    # carrying generation -1 and no member id would pass the coordinator unfenced.
    dropped = SimpleNamespace(_coordinator=SimpleNamespace(group_id="app", generation=-1, member_id="",
                                                           _group_instance_id=None))
    with pytest.raises(GroupFencedError, match="no member of group app"):
        GroupMetadata.of(cast(AIOKafkaConsumer, dropped))
    dropped._coordinator.generation, dropped._coordinator.member_id = 7, "member-1"
    assert GroupMetadata.of(cast(AIOKafkaConsumer, dropped)) == GROUP


def test_the_offset_fetch_asks_for_stable_offsets() -> None:
    request = StableOffsetFetchRequest("app", [TopicPartition("b", 1), TopicPartition("a", 0), TopicPartition("b", 0)])
    struct = request.prepare({9: (0, 9)})
    assert type(struct) is OffsetFetchRequest_v7
    group, topics, require_stable, _ = OffsetFetchRequest_v7.SCHEMA.decode(io.BytesIO(struct.encode()))
    assert (group, require_stable) == ("app", True)
    assert [(name, indexes) for name, indexes, _ in topics] == [("a", [0]), ("b", [0, 1])]


async def _member(bootstrap: str, group: str, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                session_timeout_ms=6000, heartbeat_interval_ms=500, isolation_level="read_committed")
    await consumer.start()
    return consumer


async def _joined(consumer: AIOKafkaConsumer, after_generation: int = 0) -> GroupMetadata:
    """Poll until the consumer is a member of a generation newer than ``after_generation``."""
    async def member() -> bool:
        await consumer.getmany(timeout_ms=100)
        return consumer._coordinator.generation > after_generation and bool(consumer.assignment())
    await wait_for(member, timeout=30, message="the consumer to join its group")
    return GroupMetadata.of(consumer)


async def _commit(producer: AIOKafkaProducer, offsets: dict[TopicPartition, tuple[int, str]],
                  group: GroupMetadata) -> None:
    await producer.begin_transaction()
    await send_offsets_to_transaction(producer, offsets, group, timeout=20)
    await producer.commit_transaction()


async def _committed(admin: AIOKafkaAdminClient, group: str, tp: TopicPartition, offset: int) -> Any:
    """The group's committed offset of ``tp`` once it is ``offset`` (the commit markers land a moment later)."""
    async def found() -> Any:
        committed = (await admin.list_consumer_group_offsets(group)).get(tp)
        return committed if committed is not None and committed.offset == offset else None
    return await wait_for(found, timeout=20, message=f"offset {offset} of {tp} to be committed")


@pytest.mark.broker
async def test_offsets_commit_with_the_transaction_and_an_old_generation_is_fenced(
        kafka_bootstrap: str, new_topic: Any, admin: AIOKafkaAdminClient) -> None:
    topic = await new_topic("txn-v3", partitions=2)
    group = f"txn-v3-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{group}-p",
                                enable_idempotence=True, acks="all")
    await producer.start()
    first = await _member(kafka_bootstrap, group, topic)
    second: AIOKafkaConsumer | None = None
    try:
        await check_broker_supports(producer)
        old = await _joined(first)
        await _commit(producer, {tp: (5, "time-5")}, old)
        assert (await _committed(admin, group, tp, 5)).metadata == "time-5"
        stable = await fetch_stable_offsets(first, [tp, TopicPartition(topic, 1)], timeout=20)
        assert stable == {tp: (5, "time-5")}  # partition 1 has no committed offset

        second = await _member(kafka_bootstrap, group, topic)  # a rebalance: a new generation
        current, _ = await asyncio.gather(_joined(first, old.generation_id), _joined(second, old.generation_id))
        await producer.begin_transaction()
        with pytest.raises(GroupFencedError, match="ILLEGAL_GENERATION|IllegalGeneration"):
            await send_offsets_to_transaction(producer, {tp: (9, "zombie")}, old, timeout=20)
        await producer.abort_transaction()
        assert (await admin.list_consumer_group_offsets(group))[tp].offset == 5

        await _commit(producer, {tp: (7, "time-7")}, current)
        await _committed(admin, group, tp, 7)
    finally:
        for consumer in (first, second):
            if consumer is not None:
                await consumer.stop()
        await producer.stop()


@pytest.mark.broker
async def test_offsets_go_to_the_coordinators_found_again_when_the_cached_ones_cannot_be_reached(
        kafka_bootstrap: str, new_topic: Any, admin: AIOKafkaAdminClient) -> None:
    # After a broker kill the producer's cached coordinators are a node nobody reaches: the send
    # raises NodeNotReadyError. It must look them up again and commit, not fail the transaction
    # (under v2 five such commits in a row stopped the worker while the broker was down).
    topic = await new_topic("txn-moved", partitions=1)
    group = f"txn-moved-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{group}-p",
                                enable_idempotence=True, acks="all")
    await producer.start()
    member = await _member(kafka_bootstrap, group, topic)
    try:
        metadata = await _joined(member)
        await producer.begin_transaction()
        sender: Any = producer._sender
        unknown_node = 9999  # in no metadata: like a killed broker, it cannot be connected to
        sender._coordinators[CoordinationType.TRANSACTION] = unknown_node
        sender._coordinators[CoordinationType.GROUP] = unknown_node
        await send_offsets_to_transaction(producer, {tp: (3, "t3")}, metadata, timeout=20)
        await producer.commit_transaction()
        await _committed(admin, group, tp, 3)
    finally:
        await member.stop()
        await producer.stop()
