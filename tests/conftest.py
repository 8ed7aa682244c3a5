"""Session-wide fixtures: one real Kafka broker (the project's dev broker) and topic helpers.

Set STREAMER_TEST_BOOTSTRAP=host:port to run against a broker you started yourself
(e.g. ``python -m streamer.devbroker start``); STREAMER_KAFKA_VERSION picks the Kafka
version the dev broker runs (default: streamer.devbroker.KAFKA_VERSION).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from streamer.devbroker import KAFKA_VERSION, DevBroker

NewTopicFactory = Callable[..., Awaitable[str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the broker carries the ``broker`` marker, so ``-m 'not broker'`` skips them."""
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.broker)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the session's broker: STREAMER_TEST_BOOTSTRAP, or a fresh dev broker."""
    external = os.environ.get("STREAMER_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    broker = DevBroker(version=os.environ.get("STREAMER_KAFKA_VERSION", KAFKA_VERSION))
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """One admin client for the whole session (on the session event loop)."""
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="streamer-tests-admin")
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def new_topic(admin: AIOKafkaAdminClient) -> AsyncIterator[NewTopicFactory]:
    """``await new_topic(name_prefix, partitions=4, config=None, replication=1) -> name``.

    Creates a uniquely named topic, waits until its metadata shows every partition with a
    leader, and deletes the test's topics afterwards.
    """
    created: list[str] = []

    async def make(name_prefix: str, partitions: int = 4, config: dict[str, str] | None = None,
                   replication: int = 1) -> str:
        name = f"{name_prefix}-{uuid.uuid4().hex[:10]}"
        await admin.create_topics([NewTopic(name, partitions, replication, topic_configs=dict(config or {}))])
        created.append(name)
        await _wait_for_leaders(admin, name, partitions)
        return name

    yield make
    if created:
        try:
            await admin.delete_topics(created)
        except KafkaError:
            pass  # best effort: the broker is thrown away at the end of the session anyway


async def _wait_for_leaders(admin: AIOKafkaAdminClient, name: str, partitions: int, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        described = await admin.describe_topics([name])
        info = described[0] if described else {}
        found = info.get("partitions") or []
        if info.get("error_code", 1) == 0 and len(found) == partitions and all(p["leader"] >= 0 for p in found):
            return
        if loop.time() > deadline:
            raise AssertionError(f"topic {name} has no leader for some of its {partitions} partitions "
                                 f"after {timeout}s: {info}")
        await asyncio.sleep(0.05)
