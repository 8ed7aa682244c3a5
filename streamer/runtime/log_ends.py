"""The high watermarks of partitions: where a restore ends, whatever the consumer's isolation level.

A ``read_committed`` consumer's end offsets are the last stable offsets: they stop before the
first transaction still being decided. A task that moves under exactly-once may find its last
owner's final transaction in that state (its changelog records written, its commit on the
way); ending the restore there loses those records' state, while the committed offsets read
next (which wait for stable offsets) already count them. So a restore reads to the high
watermark instead: a ``read_committed`` reader gets past an undecided transaction only once
it is committed or aborted, which is exactly the wait needed (Kafka Streams restores to the
log end too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.offset import OffsetRequest

#: ListOffsets' timestamp for "the latest offset", and its isolation level that gives the high watermark.
_LATEST = -1
_READ_UNCOMMITTED = 0
#: How long leader changes and metadata refreshes may delay the answer before the restore fails.
TIMEOUT_S = 60.0


class EndOffsetsError(KafkaError):
    """The brokers did not say where the changelog partitions end."""


async def high_watermarks(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition],
                          timeout_s: float = TIMEOUT_S) -> dict[TopicPartition, int]:
    """The high watermark of each partition, asked of its leader through the consumer's connections."""
    client: Any = consumer._client  # aiokafka has no public ListOffsets with an isolation level of one's choosing
    wanted = set(partitions)
    found: dict[TopicPartition, int] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last_error: BaseException | None = None
    while wanted - found.keys():
        if loop.time() > deadline:
            raise EndOffsetsError(f"no end offsets for {sorted(wanted - found.keys())} within {timeout_s:.0f}s "
                                  f"(last error: {last_error!r}); are the changelog topics' leaders available?")
        by_leader: dict[int, dict[str, list[tuple[int, int]]]] = {}
        for tp in wanted - found.keys():
            leader = client.cluster.leader_for_partition(tp)
            if leader is None or leader < 0:  # a topic this client does not follow yet, or a leader moving
                client.add_topic(tp.topic)
                last_error = KafkaError(f"no leader known for {tp}")
                continue
            by_leader.setdefault(leader, {}).setdefault(tp.topic, []).append((tp.partition, _LATEST))
        for leader, topics in by_leader.items():
            try:
                response = await client.send(leader, OffsetRequest(-1, _READ_UNCOMMITTED, list(topics.items())))
            except KafkaError as error:
                last_error = error
                continue
            for topic, answers in response.topics:
                for partition, error_code, *rest in answers:
                    if error_code:
                        last_error = for_code(error_code)(f"{topic}-{partition}")
                    else:  # v1 and later: (timestamp, offset[, leader epoch]); v0: ([offset],)
                        found[TopicPartition(topic, partition)] = rest[1] if len(rest) > 1 else rest[0][0]
        if wanted - found.keys():
            await client.force_metadata_update()
            await asyncio.sleep(0.1)
    return found
