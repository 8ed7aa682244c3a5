"""The dev broker is a real Kafka that aiokafka 0.14 can use for everything streamer needs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import OffsetAndMetadata

from streamer.devbroker import KAFKA_VERSION, BrokerStartError, DevBroker, DevBrokerError, cache_dir, ensure_jars
from streamer.devbroker import cli as devbroker_cli
from streamer.devbroker.config import NodeSpec, random_cluster_id, server_properties
from streamer.devbroker.security import Security
from streamer.devbroker.tls import TlsFiles, ensure_tls_files
from streamer.partitioner import default_partition
from tests.kafka_helpers import consume_all, end_offsets, produce, wait_for

broker = pytest.mark.broker


# ---- the broker speaks everything streamer uses ---------------------------------------------


@broker
async def test_send_batch_and_getmany_round_trip(kafka_bootstrap: str, new_topic) -> None:
    topic = await new_topic("roundtrip", partitions=4)
    rows = [(f"k{i % 97}".encode(), f"v{i}".encode()) for i in range(3000)]
    rows.append((None, b"no key"))
    await produce(kafka_bootstrap, topic, rows)

    records = await consume_all(kafka_bootstrap, topic, len(rows), timeout=30)

    assert len(records) == len(rows)
    for record in records:
        if record.key is not None:
            assert record.partition == default_partition(record.key, 4)
    keyed = [(r.key, r.value) for r in records if r.key is not None]
    assert sorted(keyed) == sorted(rows[:-1])
    for partition in range(4):  # per-partition order is the order produced
        produced = [v for k, v in rows[:-1] if default_partition(k, 4) == partition]
        assert [r.value for r in records if r.partition == partition and r.key is not None] == produced
    assert sum((await end_offsets(kafka_bootstrap, topic)).values()) == len(rows)


@broker
async def test_consumer_group_commit_and_resume(kafka_bootstrap: str, new_topic) -> None:
    topic = await new_topic("group", partitions=2)
    await produce(kafka_bootstrap, topic, [(None, f"{p}-{i}".encode(), p) for p in range(2) for i in range(50)])
    group = f"group-{uuid.uuid4().hex[:8]}"

    first = _group_consumer(kafka_bootstrap, group)
    await first.start()
    try:
        first.subscribe([topic])
        seen = await _read_group(first, 100)
        assert len(seen) == 100
        await first.commit({TopicPartition(topic, 0): 30, TopicPartition(topic, 1): 40})
    finally:
        await first.stop()

    second = _group_consumer(kafka_bootstrap, group)
    await second.start()
    try:
        second.subscribe([topic])
        resumed = await _read_group(second, 30)
        assert sorted(r.value.decode() for r in resumed) == sorted(
            [f"0-{i}" for i in range(30, 50)] + [f"1-{i}" for i in range(40, 50)])
        assert await second.committed(TopicPartition(topic, 0)) == 30
    finally:
        await second.stop()


def _group_consumer(bootstrap: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                            auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000)


async def _read_group(consumer: AIOKafkaConsumer, count: int, timeout: float = 30.0) -> list:
    got: list = []

    async def enough() -> bool:
        batches = await consumer.getmany(timeout_ms=200)
        for records in batches.values():
            got.extend(records)
        return len(got) >= count

    await wait_for(enough, timeout=timeout, interval=0, message=f"{count} records for the group")
    return got


@broker
async def test_admin_creates_compacted_topics_and_describes_them(admin: AIOKafkaAdminClient) -> None:
    name = f"compacted-{uuid.uuid4().hex[:8]}"
    await admin.create_topics([NewTopic(name, 3, 1, topic_configs={"cleanup.policy": "compact",
                                                                    "min.compaction.lag.ms": "0"})])
    try:
        async def described() -> list | None:
            topics = await admin.describe_topics([name])
            return topics if topics[0]["error_code"] == 0 else None  # not in the metadata yet

        topics = await wait_for(described, timeout=10)
        assert len(topics[0]["partitions"]) == 3

        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        configs = {entry[0]: entry[1] for r in responses for res in r.resources for entry in res[4]}
        assert configs["cleanup.policy"] == "compact"
        assert configs["min.compaction.lag.ms"] == "0"
        assert name in await admin.list_topics()
    finally:
        await admin.delete_topics([name])


@broker
async def test_transactions_hide_aborted_records_from_read_committed(kafka_bootstrap: str, new_topic) -> None:
    topic = await new_topic("txn", partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"txn-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        for outcome, count in (("commit", 10), ("abort", 7), ("commit", 5)):
            await producer.begin_transaction()
            for i in range(count):
                await producer.send(topic, value=f"{outcome}-{i}".encode(), partition=i % 2)
            if outcome == "commit":
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
        # one more through the batch path, committed
        async with producer.transaction():
            batch = producer.create_batch()
            for i in range(3):
                batch.append(key=None, value=f"batch-{i}".encode(), timestamp=None)
            await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()

    committed = await consume_all(kafka_bootstrap, topic, 18, timeout=30, isolation_level="read_committed")
    values = sorted(r.value.decode() for r in committed)
    assert len(committed) == 18
    assert not [v for v in values if v.startswith("abort")]
    everything = await consume_all(kafka_bootstrap, topic, 25, timeout=30, isolation_level="read_uncommitted")
    assert len(everything) == 25
    assert len([r for r in everything if r.value.startswith(b"abort")]) == 7


@broker
async def test_send_offsets_to_transaction_commits_group_offsets(kafka_bootstrap: str, new_topic,
                                                                  admin: AIOKafkaAdminClient) -> None:
    source = await new_topic("eos-in", partitions=1)
    sink = await new_topic("eos-out", partitions=1)
    await produce(kafka_bootstrap, source, [(None, f"in-{i}".encode()) for i in range(20)])
    group = f"eos-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(source, 0)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"eos-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        for upto, commit in ((12, True), (20, False)):
            await producer.begin_transaction()
            await producer.send_and_wait(sink, value=f"out-{upto}".encode())
            await producer.send_offsets_to_transaction({tp: OffsetAndMetadata(upto, "")}, group)
            if commit:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
    finally:
        await producer.stop()

    offsets = await admin.list_consumer_group_offsets(group)
    assert offsets[tp].offset == 12  # the aborted transaction's offsets were not committed
    out = await consume_all(kafka_bootstrap, sink, 1, timeout=20)
    assert [r.value for r in out] == [b"out-12"]


# ---- the broker process itself -----------------------------------------------------------------


def test_jars_are_cached_and_fetching_again_is_instant() -> None:
    libs = ensure_jars()
    assert libs == cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"
    assert (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
    assert ensure_jars() == libs


def test_cluster_ids_look_like_kafka_uuids() -> None:
    ids = {random_cluster_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_tls_files_are_made_once_for_loopback_and_kept(tmp_path: Path) -> None:
    from cryptography import x509

    files = ensure_tls_files(tmp_path / "tls")
    made = {path: path.read_bytes() for path in files.all()}
    assert ensure_tls_files(tmp_path / "tls") == files and {p: p.read_bytes() for p in files.all()} == made
    chain = x509.load_pem_x509_certificates(files.broker_keystore.read_bytes())
    names = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert chain[0].issuer == x509.load_pem_x509_certificate(files.ca_cert.read_bytes()).subject
    assert b"PRIVATE KEY" in files.broker_keystore.read_bytes() and files.client_key.stat().st_mode & 0o077 == 0


def test_a_secured_node_listens_for_clients_and_in_plain_text_for_itself(tmp_path: Path) -> None:
    node = NodeSpec(1, 9300, 9301, tmp_path, internal_port=9302)
    security = Security("SASL_SSL", {"alice": "alice-secret"}, TlsFiles(tmp_path))
    settings = server_properties(node, [node], security.listener_properties(), "SASL_SSL")
    assert settings["listeners"] == "CLIENT://127.0.0.1:9300,INTERNAL://127.0.0.1:9302,CONTROLLER://127.0.0.1:9301"
    assert settings["listener.security.protocol.map"] == "CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert settings["inter.broker.listener.name"] == "INTERNAL"
    assert 'user_alice="alice-secret"' in settings["listener.name.client.plain.sasl.jaas.config"]
    assert settings["listener.name.client.ssl.client.auth"] == "none"  # SASL authenticates, not the certificate
    assert security.format_arguments()[:2] == ["--add-scram", "SCRAM-SHA-256=[name=alice,password=alice-secret]"]
    assert node.plaintext_bootstrap == "127.0.0.1:9302"
    with pytest.raises(DevBrokerError, match="no spaces, quotes or commas"):
        Security("SASL_PLAINTEXT", {"alice": 'pass"word'})


def test_super_users_turn_acls_on_for_every_other_user() -> None:
    assert "authorizer.class.name" not in Security("SASL_PLAINTEXT", {"alice": "a"}).listener_properties()
    settings = Security("SASL_PLAINTEXT", {"admin": "a", "bob": "b"}, super_users=("admin",)).listener_properties()
    assert settings["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert settings["super.users"] == "User:ANONYMOUS;User:admin"  # the plain-text listeners: nodes and set-up
    with pytest.raises(DevBrokerError, match="super user.s. carol are not users"):
        Security("SASL_PLAINTEXT", {"admin": "a"}, super_users=("carol",))
    with pytest.raises(DevBrokerError, match="need SASL users"):
        Security("PLAINTEXT", super_users=("admin",))


@pytest.mark.parametrize(("flags", "protocol", "users"), [
    (["--tls"], "SSL", None),
    (["--sasl"], "SASL_PLAINTEXT", None),
    (["--tls", "--sasl", "--user", "a:b", "--user", "c:d:e"], "SASL_SSL", {"a": "b", "c": "d:e"}),
])
def test_cli_security_flags(flags: list[str], protocol: str, users: dict[str, str] | None) -> None:
    args = devbroker_cli._parser().parse_args(["start", *flags])
    assert devbroker_cli._security(args) == (protocol, users)


def test_cli_user_without_sasl_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert devbroker_cli.main(["start", "--tls", "--user", "a:b"]) == 2
    assert "--user needs --sasl" in capsys.readouterr().err


@broker
@pytest.mark.parametrize(("setting", "value", "expected"), [
    ("num.io.threads", "not-a-number", "num.io.threads"),            # rejected by the storage tool
    ("authorizer.class.name", "no.such.Authorizer", "ClassNotFoundException: no.such.Authorizer"),  # by the broker
])
def test_a_broker_that_cannot_start_says_why(tmp_path: Path, setting: str, value: str, expected: str) -> None:
    dev = DevBroker(data_dir=tmp_path, config={setting: value})
    with pytest.raises(BrokerStartError) as raised:
        dev.start(timeout=60)
    assert expected in str(raised.value)
    assert not dev.running


@broker
def test_killing_the_owner_kills_the_jvm_and_removes_the_temp_dir(tmp_path: Path) -> None:
    script = ("import json, sys\n"
              "from streamer.devbroker import DevBroker\n"
              "b = DevBroker(); b.start()\n"
              "print(json.dumps({'dir': str(b.data_dir), 'pid': b.node_pid(0)}), flush=True)\n"
              "sys.stdin.read()\n")
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             cwd=Path(__file__).resolve().parent.parent)
    try:
        assert owner.stdout is not None
        started = json.loads(owner.stdout.readline())
        assert _alive(started["pid"]) and Path(started["dir"]).is_dir()
        owner.send_signal(signal.SIGKILL)  # no atexit, no finally: only the watchdog is left
        owner.wait(timeout=10)
        _poll(lambda: not _alive(started["pid"]) and not Path(started["dir"]).exists(), 30,
              "the orphaned JVM to die and its temp dir to go")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _poll(condition, timeout: float, what: str) -> None:
    """Synchronous cousin of ``wait_for`` for tests without an event loop."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@broker
def test_cli_start_status_stop(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"kafka-{KAFKA_VERSION}").symlink_to(ensure_jars().parent)  # reuse the fetched jars
    env = dict(os.environ, STREAMER_CACHE_DIR=str(cache))
    cli = [sys.executable, "-m", "streamer.devbroker"]
    root = Path(__file__).resolve().parent.parent

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cli + list(args), check=False, env=env, cwd=root, capture_output=True, text=True,
                              timeout=120)

    assert run("status").returncode == 1
    started = run("start", "--port", "0")
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip().splitlines()[-1]
    assert bootstrap.startswith("127.0.0.1:")
    try:
        status = run("status")
        assert status.returncode == 0 and bootstrap in status.stdout
        again = run("start", "--port", "0")  # idempotent: reports the running one
        assert again.returncode == 0 and bootstrap in again.stdout
    finally:
        stopped = run("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert run("status").returncode == 1


# ---- three nodes: replication and a node failure -----------------------------------------------


@broker
@pytest.mark.slow
async def test_three_node_cluster_survives_losing_a_node() -> None:
    cluster = DevBroker(nodes=3)
    await asyncio.to_thread(cluster.start)
    try:
        bootstrap = cluster.bootstrap_servers
        assert len(bootstrap.split(",")) == 3
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            topic = f"replicated-{uuid.uuid4().hex[:8]}"
            await admin.create_topics([NewTopic(topic, 2, 3)])
            described = await wait_for(lambda: _fully_replicated(admin, topic, 3), timeout=20)
            assert all(len(p["replicas"]) == 3 for p in described)
        finally:
            await admin.close()
        await produce(bootstrap, topic, [(None, f"before-{i}".encode()) for i in range(100)], acks="all")

        cluster.kill_node(1)
        assert not cluster.node_running(1)
        survivors = ",".join(cluster.node_bootstrap(i) for i in (0, 2))
        await produce(survivors, topic, [(None, f"after-{i}".encode()) for i in range(100)], acks="all")
        assert len(await consume_all(survivors, topic, 200, timeout=30)) == 200

        await asyncio.to_thread(cluster.restart_node, 1)
        assert cluster.node_running(1)
    finally:
        await asyncio.to_thread(cluster.stop)


async def _fully_replicated(admin: AIOKafkaAdminClient, topic: str, replicas: int) -> list | None:
    described = await admin.describe_topics([topic])
    partitions = described[0].get("partitions") or []
    if partitions and all(len(p["isr"]) == replicas and p["leader"] >= 0 for p in partitions):
        return partitions
    return None
