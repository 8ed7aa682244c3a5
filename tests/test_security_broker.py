"""Workers through TLS and SASL against dev brokers secured each way, and the start-up errors of a bad setup.

One broker per security protocol for the module (started once, a few seconds each). Topics are
made and read through the brokers' plain-text listener; the workers use only the secured one.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from apps.wordcount import build
from streamer.config import StreamerConfig
from streamer.devbroker import DevBroker
from streamer.devbroker.tls import make_ca
from streamer.errors import BrokerAuthenticationError, ConfigError
from streamer.runtime.clients import connection_options
from streamer.runtime.worker import Worker
from tests.kafka_helpers import consume_all, produce, wait_for
from tests.workers import run_cli

pytestmark = pytest.mark.broker

LINES = [(None, f"secure words {i % 7} secure".encode()) for i in range(200)]
EXPECTED = Counter(word for _, line in LINES for word in line.decode().split())


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[DevBroker]:
    with DevBroker(security_protocol="SSL") as broker:
        yield broker


@pytest.fixture(scope="module")
def sasl_broker() -> Iterator[DevBroker]:
    with DevBroker(security_protocol="SASL_PLAINTEXT", users={"alice": "alice-secret", "bob": "bob-secret"}) as broker:
        yield broker


async def _topics(broker: DevBroker, *prefixes: str) -> list[str]:
    names = [f"{prefix}-{uuid.uuid4().hex[:8]}" for prefix in prefixes]
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.plaintext_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 2, 1) for name in names])
    finally:
        await admin.close()
    return names


async def _count_words(broker: DevBroker, settings: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       guarantee: str = "at_least_once") -> None:
    """Word count in a worker that reaches ``broker`` with ``settings`` only; the counts must come out right."""
    source, output = await _topics(broker, "secure-lines", "secure-counts")
    monkeypatch.setenv("STREAMER_APP_INPUT", source)
    monkeypatch.setenv("STREAMER_APP_OUTPUT", output)
    await produce(broker.plaintext_bootstrap_servers, source, LINES)
    config = StreamerConfig(application_id=f"secure-{uuid.uuid4().hex[:8]}", state_dir=str(tmp_path),
                            processing_guarantee=guarantee, commit_interval_ms=200, session_timeout_ms=6000,
                            heartbeat_interval_ms=1000, broker_timeout_s=20, **settings)
    worker = Worker(build().build(), config)
    running = asyncio.create_task(worker.run())

    async def counted() -> bool:
        if running.done():
            await running  # raises what stopped the worker
        records = await consume_all(broker.plaintext_bootstrap_servers, output, 1, timeout=30)
        return {r.key.decode(): json.loads(r.value) for r in records} == dict(EXPECTED)

    try:
        await wait_for(counted, timeout=60, interval=0.5, message="the word counts through the secured listener")
    finally:
        worker.stop()
        await running


async def test_a_worker_counts_words_through_tls_with_a_client_certificate(
        tls_broker: DevBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = tls_broker.client_settings()
    assert settings["security_protocol"] == "SSL" and settings["ssl_certfile"]
    await _count_words(tls_broker, settings, tmp_path, monkeypatch, guarantee="exactly_once")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_a_worker_counts_words_through_sasl(sasl_broker: DevBroker, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, mechanism: str) -> None:
    settings = sasl_broker.client_settings("bob", mechanism)
    assert settings["sasl_username"] == "bob" and settings["security_protocol"] == "SASL_PLAINTEXT"
    await _count_words(sasl_broker, settings, tmp_path, monkeypatch,
                       guarantee="exactly_once" if mechanism.startswith("SCRAM") else "at_least_once")


def _run_error(broker: DevBroker, settings: dict[str, str]) -> str:
    """``streamer run`` with ``settings``: it must exit 2 at once with one ``streamer: error:`` line; that line."""
    flags = [arg for name, value in settings.items() if name != "bootstrap_servers"
             for arg in ("--set", f"{name}={value}")]
    result = run_cli("run", "apps.wordcount:topology", "--application-id", "secure-bad",
                     "--bootstrap-servers", broker.bootstrap_servers, "--broker-timeout-s", "10", *flags, timeout=30)
    errors = [line for line in result.stderr.splitlines() if line.startswith("streamer: error: ")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return errors[0]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_a_wrong_password_stops_streamer_run_with_one_line(sasl_broker: DevBroker, mechanism: str) -> None:
    settings = dict(sasl_broker.client_settings("alice", mechanism), sasl_password="not-her-password")
    line = _run_error(sasl_broker, settings)
    assert f"SASL {mechanism} authentication as 'alice' failed" in line, line
    assert "check sasl_username and sasl_password" in line, line


def test_an_untrusted_broker_certificate_stops_streamer_run_with_one_line(tls_broker: DevBroker,
                                                                         tmp_path: Path) -> None:
    make_ca(tmp_path / "other-ca.pem", tmp_path / "other-ca-key.pem", "a CA that signed nothing of the broker's")
    settings = dict(tls_broker.client_settings(), ssl_cafile=str(tmp_path / "other-ca.pem"))
    line = _run_error(tls_broker, settings)
    assert "TLS certificate of the broker" in line and "is not trusted" in line, line
    assert "set ssl_cafile to the CA certificate that signed it" in line, line


async def test_each_wrong_setup_gets_its_own_reason(tls_broker: DevBroker, sasl_broker: DevBroker) -> None:
    def worker(broker: DevBroker, **settings: str | None) -> Worker:
        merged = {k: v for k, v in {**broker.client_settings(), **settings}.items() if v is not None}
        return Worker(build().build(), StreamerConfig(application_id="secure-wrong", broker_timeout_s=10, **merged))

    cases = [
        (worker(tls_broker, ssl_certfile=None, ssl_keyfile=None), "wants a client certificate"),
        (worker(tls_broker, security_protocol="PLAINTEXT", ssl_cafile=None, ssl_certfile=None, ssl_keyfile=None),
         "speaks TLS"),
        (worker(sasl_broker, security_protocol="PLAINTEXT", sasl_mechanism=None, sasl_username=None,
                sasl_password=None), "wants SASL"),
        (worker(sasl_broker, bootstrap_servers=sasl_broker.plaintext_bootstrap_servers), "does not take SASL"),
    ]
    for case, reason in cases:
        with pytest.raises(BrokerAuthenticationError, match=reason):
            await asyncio.wait_for(case.run(), 20)


def test_the_security_settings_become_aiokafka_options(tls_broker: DevBroker) -> None:
    config = StreamerConfig(application_id="x", **tls_broker.client_settings())
    options = connection_options(config)
    assert options["security_protocol"] == "SSL" and options["ssl_context"].check_hostname
    assert connection_options(config)["ssl_context"] is options["ssl_context"], "one context for every client"
    assert tls_broker.tls is not None
    sasl = connection_options(StreamerConfig(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u",
                                             sasl_password="p", ssl_cafile=str(tls_broker.tls.ca_cert)))
    assert (sasl["sasl_mechanism"], sasl["sasl_plain_username"], sasl["sasl_plain_password"]) == ("PLAIN", "u", "p")


@pytest.mark.parametrize(("settings", "message"), [
    ({"security_protocol": "TLS"}, "security_protocol must be one of"),
    ({"ssl_cafile": "/ca.pem"}, "ssl_cafile set but security_protocol is PLAINTEXT"),
    ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "p"}, "needs sasl_mechanism"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}, "needs sasl_username and sasl_password"),
    ({"sasl_mechanism": "PLAIN"}, "use SASL_PLAINTEXT or SASL_SSL"),
    ({"security_protocol": "SSL", "ssl_keyfile": "k.pem"}, "ssl_keyfile needs ssl_certfile"),
    ({"security_protocol": "SSL", "client_options": {"security_protocol": "SSL"}}, "keep one"),
])
def test_security_settings_that_do_not_fit_are_config_errors(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StreamerConfig(**settings)  # type: ignore[arg-type]


def test_missing_certificate_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ssl_cafile .*cannot load it"):
        connection_options(StreamerConfig(security_protocol="SSL", ssl_cafile=str(tmp_path / "none.pem")))
