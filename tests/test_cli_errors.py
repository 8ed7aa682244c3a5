"""Misconfiguration fails fast with one actionable line and a non-zero exit."""

from __future__ import annotations

import socket

import pytest

from tests.workers import run_cli


def _error_line(result) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines, f"no error output (exit {result.returncode})"
    assert lines[-1].startswith("streamer: error: "), result.stderr[-2000:]
    return lines[-1]


def test_bad_module_path() -> None:
    result = run_cli("run", "apps.no_such_app:topology", "--application-id", "x")
    assert result.returncode == 2
    assert "cannot import module 'apps.no_such_app'" in _error_line(result)


def test_bad_attribute_lists_what_exists() -> None:
    result = run_cli("run", "apps.wordcount:topolgy", "--application-id", "x")
    assert result.returncode == 2
    line = _error_line(result)
    assert "has no attribute 'topolgy'" in line and "topology" in line


def test_not_module_attr_form() -> None:
    result = run_cli("describe", "apps.wordcount")
    assert result.returncode == 2
    assert "module:attr" in _error_line(result)


def test_missing_application_id() -> None:
    result = run_cli("run", "apps.wordcount:topology")
    assert result.returncode == 2
    assert "--application-id" in _error_line(result)


def test_unreachable_broker() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("run", "apps.wordcount:topology", "--application-id", "x",
                     "--bootstrap-servers", f"127.0.0.1:{port}", "--broker-timeout-s", "3")
    assert result.returncode == 2
    assert f"no Kafka broker answered at 127.0.0.1:{port}" in _error_line(result)


@pytest.mark.broker
def test_missing_source_topic(kafka_bootstrap: str) -> None:
    result = run_cli("run", "apps.wordcount:topology", "--application-id", "missing-topic-app",
                     "--bootstrap-servers", kafka_bootstrap,
                     "--app-setting", "input=no-such-topic-xyz", "--app-setting", "output=no-such-output-xyz")
    assert result.returncode == 2
    line = _error_line(result)
    assert "no-such-topic-xyz" in line and "do not exist" in line and "--auto-create-topics" in line


def test_describe_names_internal_topics() -> None:
    result = run_cli("describe", "apps.wordcount:topology", "--application-id", "wordcount")
    assert result.returncode == 0, result.stderr
    assert "Sub-topology 1" in result.stdout
    assert "wordcount-words-by-word-repartition" in result.stdout
    assert "wordcount-word-counts-changelog" in result.stdout


def test_malformed_client_options_is_one_line() -> None:
    result = run_cli("run", "apps.wordcount:topology", "--application-id", "x", "--set", "client_options=oops")
    assert result.returncode == 2
    assert "setting 'client_options' takes a JSON object" in _error_line(result)


@pytest.mark.parametrize(("setting", "says"), [
    ("client_options={\"fetch_min_bytes\": 1}", "client_options fetch_min_bytes: not an option that aiokafka's "
                                                "consumer, producer and admin client all take"),
    ("metrics_port=99999", "metrics_port must be a port from 1 to 65535"),
    ("auto_create_topics=maybe", "setting 'auto_create_topics' takes true or false"),
])
def test_other_malformed_settings_are_one_line(setting: str, says: str) -> None:
    result = run_cli("run", "apps.wordcount:topology", "--application-id", "x", "--bootstrap-servers", "127.0.0.1:1",
                     "--broker-timeout-s", "3", "--set", setting)
    assert result.returncode == 2
    assert says in _error_line(result)
    assert "Traceback" not in result.stderr


def test_version_and_typing_marker() -> None:
    import importlib.resources

    import streamer

    assert streamer.__version__ == "0.1.0"
    assert importlib.resources.files("streamer").joinpath("py.typed").is_file()


async def test_sigusr1_logs_where_each_asyncio_task_waits(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from streamer.cli import _log_task_stacks

    waiting = asyncio.create_task(asyncio.Event().wait(), name="stuck-task")
    await asyncio.sleep(0)  # let it start and block
    try:
        _log_task_stacks()
    finally:
        waiting.cancel()
    assert "asyncio tasks on SIGUSR1" in caplog.text and "stuck-task: wait" in caplog.text
