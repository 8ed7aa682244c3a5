"""Exactly-once: one transactional producer per task, fenced by its transactional id.

aiokafka 0.14 commits offsets in a transaction with TxnOffsetCommit v0, which carries
no consumer-group generation, so the group coordinator cannot fence a zombie worker
(KIP-447). Instead each task gets ``transactional.id = <application.id>-<task_id>``:
whoever opens the task next calls InitProducerId with the same id, which aborts the old
owner's open transaction and fences its producer (Kafka Streams' original design).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError, ProducerFenced

from streamer.config import StreamerConfig
from streamer.runtime.clients import connection_options

log = logging.getLogger("streamer.transactions")

ABORT_TIMEOUT_S = 10.0
#: Errors after which the task's producer is unusable because a newer owner took its id.
FENCING_ERRORS = (ProducerFenced,)


def transactional_id(application_id: str, task_id: str) -> str:
    return f"{application_id}-{task_id}"


def producer_options(config: StreamerConfig) -> dict[str, Any]:
    """Batch, linger and acknowledgement settings every producer of a worker shares, with its connection."""
    return dict(acks="all", enable_idempotence=True, max_batch_size=config.max_batch_bytes,
                max_request_size=max(config.max_batch_bytes, 1_048_576), linger_ms=config.linger_ms,
                **connection_options(config))


async def start_task_producer(config: StreamerConfig, task_id: str) -> AIOKafkaProducer:
    """A started transactional producer with its first transaction open."""
    producer = AIOKafkaProducer(
        client_id=f"{config.application_id}-{task_id}-producer",
        transactional_id=transactional_id(config.application_id, task_id),
        **producer_options(config),
    )
    await producer.start()
    await producer.begin_transaction()
    return producer


async def commit_transaction(producer: AIOKafkaProducer, offsets: dict[TopicPartition, tuple[int, str]],
                             group_id: str) -> None:
    """Add the input offsets (with their metadata: the task's time) to the open transaction, commit it,
    and open the next one."""
    if offsets:
        await producer.send_offsets_to_transaction(offsets, group_id)
    await producer.commit_transaction()
    await producer.begin_transaction()


def producer_fenced(producer: AIOKafkaProducer) -> bool:
    """True once the producer learnt that a newer owner took its transactional id (aiokafka's fatal state).

    False for v2's handle while the worker replaces its producer (there is none for that moment).
    """
    manager = getattr(producer, "_txn_manager", None)
    return manager is not None and bool(manager.is_fatal_error())


async def abort_quietly(producer: AIOKafkaProducer, task_id: str) -> None:
    """Abort the open transaction if the producer still can; a fenced one cannot and need not."""
    if producer_fenced(producer):  # aiokafka asserts on aborting from there
        log.info("abort for task %s not possible (its producer was fenced); its next owner's init aborts it", task_id)
        return
    try:
        await asyncio.wait_for(producer.abort_transaction(), ABORT_TIMEOUT_S)
    except (KafkaError, IllegalOperation, TimeoutError) as error:
        log.info("abort for task %s not possible (%r); its next owner's init aborts it", task_id, error)
