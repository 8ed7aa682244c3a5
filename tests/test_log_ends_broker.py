"""High watermarks for a restore: past an open transaction, for topics the consumer's client did not follow yet."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamer.runtime.log_ends import high_watermarks
from tests.kafka_helpers import end_offsets, produce

pytestmark = pytest.mark.broker


async def test_high_watermarks_pass_an_open_transaction_of_a_topic_the_client_did_not_follow(
        kafka_bootstrap, new_topic) -> None:
    followed = await new_topic("ends-followed", partitions=1)
    changelog = await new_topic("ends-changelog", partitions=2)
    await produce(kafka_bootstrap, changelog, [(b"k", b"committed", 0)] * 3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"ends-{uuid.uuid4().hex[:8]}")
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level="read_committed")
    await producer.start()
    await consumer.start()
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(changelog, b"open", key=b"k", partition=0)
        consumer.assign([TopicPartition(followed, 0)])  # its client now follows this topic only
        await consumer.position(TopicPartition(followed, 0))

        ends = await high_watermarks(consumer, [TopicPartition(changelog, 0), TopicPartition(changelog, 1)],
                                     timeout_s=30)

        assert ends == {TopicPartition(changelog, 0): 4, TopicPartition(changelog, 1): 0}
        assert (await end_offsets(kafka_bootstrap, changelog, "read_committed"))[0] == 3  # the LSO stops before it
    finally:
        await producer.abort_transaction()
        await producer.stop()
        await consumer.stop()
