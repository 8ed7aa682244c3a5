"""Kafka ACLs refusing a worker an output topic, under each production_error_handler.

One SASL dev broker with ACLs on (KRaft's StandardAuthorizer) for the module: ``admin`` is a
super user and grants the ACLs; ``worker`` may read its input, write its allowed output and
dead-letter topic, and use its group and internal topics, nothing else. What the policies
decide: records for a topic named per record that the worker may not even describe (the
producer refuses them before they reach a batch). A topic it may describe but not write
is refused in the broker's answer to a sent batch, which stops the task under every policy
(as in Kafka Streams, where authorization errors are fatal); a sink topic it may not
describe stops the worker at start with what to grant.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamer import StreamsBuilder
from streamer.config import StreamerConfig
from streamer.devbroker import DevBroker
from streamer.errors import ProduceError, TopicAuthorizationError
from streamer.runtime.worker import Worker
from tests.kafka_helpers import consume_all, produce, wait_for

admin_module = pytest.importorskip("confluent_kafka.admin")
AclBinding, AclOperation = admin_module.AclBinding, admin_module.AclOperation
ResourceType, PatternType = admin_module.ResourceType, admin_module.ResourcePatternType

pytestmark = pytest.mark.broker

USERS = {"admin": "admin-secret", "worker": "worker-secret"}
#: Values the per-record topic sends to the refused topic; every other record goes to the allowed one.
SECRET = "secret"
ROWS = [(f"k{i}".encode(), (SECRET if i in (3, 7) else f"v{i}").encode()) for i in range(10)]
KEPT = sorted(key.decode() for key, value in ROWS if value != SECRET.encode())


@pytest.fixture(scope="module")
def acl_broker() -> Iterator[DevBroker]:
    with DevBroker(security_protocol="SASL_PLAINTEXT", users=USERS, super_users=("admin",)) as broker:
        yield broker


@pytest.fixture(scope="module")
def acl_admin(acl_broker: DevBroker) -> Iterator[Any]:
    """confluent-kafka's admin client as the super user ``admin``, through the SASL listener (aiokafka has no ACLs)."""
    settings = acl_broker.client_settings("admin")
    admin = admin_module.AdminClient({
        "bootstrap.servers": acl_broker.bootstrap_servers, "security.protocol": settings["security_protocol"],
        "sasl.mechanism": settings["sasl_mechanism"], "sasl.username": "admin",
        "sasl.password": settings["sasl_password"],
        # should librdkafka keep the client after the broker stopped, it must not flood later tests' stderr
        "log_level": 0, "reconnect.backoff.max.ms": 60_000})
    yield admin
    del admin  # librdkafka closes it now, while the broker still runs, instead of logging refused reconnects
    gc.collect()


class Grants:
    """Topics and ACLs for one test, made by the super user."""

    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.app_id = f"acl-{uuid.uuid4().hex[:8]}"

    def topics(self, *prefixes: str) -> list[str]:
        names = [f"{prefix}-{uuid.uuid4().hex[:8]}" for prefix in prefixes]
        for future in self.admin.create_topics([admin_module.NewTopic(n, 1, 1) for n in names]).values():
            future.result(30)
        return names

    def allow(self, kind: Any, name: str, *operations: Any, prefixed: bool = False) -> None:
        pattern = PatternType.PREFIXED if prefixed else PatternType.LITERAL
        bindings = [AclBinding(kind, name, pattern, "User:worker", "*", operation,
                               admin_module.AclPermissionType.ALLOW) for operation in operations]
        for future in self.admin.create_acls(bindings).values():
            future.result(30)

    def worker_basics(self, source: str) -> None:
        """Its input, its group and every topic named after the application (its internal topics)."""
        self.allow(ResourceType.TOPIC, source, AclOperation.READ)
        self.allow(ResourceType.GROUP, self.app_id, AclOperation.READ)
        self.allow(ResourceType.TOPIC, self.app_id, AclOperation.ALL, prefixed=True)
        self.allow(ResourceType.TRANSACTIONAL_ID, self.app_id, AclOperation.WRITE, AclOperation.DESCRIBE,
                   prefixed=True)


def _worker(broker: DevBroker, grants: Grants, builder: StreamsBuilder, tmp_path: Path, **settings: Any) -> Worker:
    config = StreamerConfig(application_id=grants.app_id, state_dir=str(tmp_path), commit_interval_ms=200,
                            session_timeout_ms=6000, heartbeat_interval_ms=1000, broker_timeout_s=20,
                            **broker.client_settings("worker"), **settings)
    return Worker(builder.build(), config)


def _per_record_topic(source: str, allowed: str, refused: str) -> StreamsBuilder:
    builder = StreamsBuilder()
    builder.stream(source, key_serde="str", value_serde="str").to(
        lambda key, value: refused if value == SECRET else allowed, key_serde="str", value_serde="str")
    return builder


async def _stopped_by_refusal(worker: Worker) -> str:
    """Run ``worker`` until the refusal stops it; its error must be one line that says what to grant."""
    with pytest.raises(ProduceError) as stopped:
        await asyncio.wait_for(worker.run(), 90)
    message = str(stopped.value)
    assert "\n" not in message
    assert "grant the application's principal WRITE and DESCRIBE on the topic" in message
    return message


def _count(worker: Worker, name: str, **labels: str) -> float:
    return worker.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(("policy", "guarantee"), [
    ("fail", "at_least_once"), ("log_and_continue", "at_least_once"), ("dead_letter", "at_least_once"),
    ("dead_letter", "exactly_once_v2"),
])
async def test_a_topic_the_worker_may_not_see_goes_to_the_policy(acl_broker: DevBroker, acl_admin: Any,
                                                                 tmp_path: Path, policy: str, guarantee: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    grants = Grants(acl_admin)
    source, allowed, refused, dead_letters = grants.topics("acl-in", "acl-out", "acl-refused", "acl-dlq")
    grants.worker_basics(source)
    grants.allow(ResourceType.TOPIC, allowed, AclOperation.WRITE)
    grants.allow(ResourceType.TOPIC, dead_letters, AclOperation.WRITE)  # nothing at all on ``refused``
    await produce(acl_broker.plaintext_bootstrap_servers, source, ROWS)
    worker = _worker(acl_broker, grants, _per_record_topic(source, allowed, refused), tmp_path,
                     production_error_handler=policy, dead_letter_topic=dead_letters,
                     processing_guarantee=guarantee)
    if policy == "fail":
        message = await _stopped_by_refusal(worker)
        assert f"output {refused}: TopicAuthorizationFailedError" in message
        assert "production_error_handler is fail" in message
        assert _count(worker, "streamer_records_failed_total", reason="production_error",
                      error="TopicAuthorizationFailedError") == 1
        return
    running = asyncio.create_task(worker.run())
    try:
        arrived = await consume_all(acl_broker.plaintext_bootstrap_servers, allowed, len(KEPT), timeout=60)
        assert sorted(r.key.decode() for r in arrived) == KEPT
        # WRITE without DESCRIBE_CONFIGS: the topic's max.message.bytes cannot be checked beforehand, and it says so
        assert f"not authorized to read the configs of topic {dead_letters}" in caplog.text
        await wait_for(lambda: _count(worker, "streamer_records_skipped_total", reason="production_error",
                                      error="TopicAuthorizationFailedError") == 2, message="two records skipped")
        if policy == "dead_letter":
            letters = await consume_all(acl_broker.plaintext_bootstrap_servers, dead_letters, 2, timeout=60)
            assert sorted(r.key for r in letters) == [b"k3", b"k7"]
            headers = dict(letters[0].headers)
            assert letters[0].value == SECRET.encode()
            assert headers["streamer.error.class"] == b"TopicAuthorizationFailedError"
            assert (headers["streamer.production.topic"], headers["streamer.production.partition"]) == (
                refused.encode(), b"-1")
            assert _count(worker, "streamer_records_dead_lettered_total", reason="production_error") == 2
    finally:
        worker.stop()
        await running


async def test_a_topic_the_worker_may_see_but_not_write_stops_it_under_every_policy(
        acl_broker: DevBroker, acl_admin: Any, tmp_path: Path) -> None:
    grants = Grants(acl_admin)
    source, read_only = grants.topics("acl-in", "acl-read-only")
    grants.worker_basics(source)
    grants.allow(ResourceType.TOPIC, read_only, AclOperation.DESCRIBE)
    await produce(acl_broker.plaintext_bootstrap_servers, source, ROWS)
    builder = StreamsBuilder()
    builder.stream(source, key_serde="str", value_serde="str").to(read_only, key_serde="str", value_serde="str")
    worker = _worker(acl_broker, grants, builder, tmp_path, production_error_handler="log_and_continue")
    message = await _stopped_by_refusal(worker)
    assert f"producing to {read_only}[0] failed: TopicAuthorizationFailedError" in message
    assert "stops the task under every production_error_handler" in message


async def test_a_sink_topic_the_worker_may_not_describe_stops_it_at_start(acl_broker: DevBroker, acl_admin: Any,
                                                                         tmp_path: Path) -> None:
    grants = Grants(acl_admin)
    source, hidden = grants.topics("acl-in", "acl-hidden")
    grants.worker_basics(source)
    builder = StreamsBuilder()
    builder.stream(source, key_serde="str", value_serde="str").to(hidden, key_serde="str", value_serde="str")
    worker = _worker(acl_broker, grants, builder, tmp_path)
    with pytest.raises(TopicAuthorizationError, match=rf"not authorized to describe topic\(s\) {hidden} at .*grant"):
        await asyncio.wait_for(worker.run(), 90)
