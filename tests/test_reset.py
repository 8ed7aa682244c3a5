"""The reset tool's pieces that need no broker: which topics are internal, times, the plan's lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.structs import TopicPartition

from apps.order_lines import build as build_order_lines
from apps.wordcount import build as build_wordcount
from streamer.cli import main
from streamer.errors import ResetError
from streamer.reset import ResetPlan, is_internal_topic, parse_datetime, topology_input_topics, \
    topology_internal_topics


def test_internal_topics_by_prefix_and_ending() -> None:
    assert is_internal_topic("wc", "wc-words-by-word-repartition")
    assert is_internal_topic("wc", "wc-word-counts-changelog")
    assert is_internal_topic("wc", "wc-fk-join-3-subscription-response-topic")
    assert not is_internal_topic("wc", "wc-dlq") and not is_internal_topic("wc", "other-x-changelog")
    assert not is_internal_topic("wc", "wcx-a-changelog")


def test_the_topology_names_its_internal_and_input_topics() -> None:
    assert topology_internal_topics(build_wordcount().build(), "wc") == {
        "wc-words-by-word-repartition", "wc-word-counts-changelog"}
    order_lines = build_order_lines().build()
    internal = topology_internal_topics(order_lines, "ol")
    assert {"ol-priced-lines-subscription-registration-topic", "ol-priced-lines-subscription-response-topic",
            "ol-priced-lines-subscription-store-changelog"} <= internal
    assert all(is_internal_topic("ol", t) for t in internal)
    assert topology_input_topics(order_lines, set()) == {"order-lines", "products"}


def test_datetimes_are_iso_and_utc_by_default() -> None:
    assert parse_datetime("1970-01-01T00:00:01Z") == 1000
    assert parse_datetime("1970-01-01T00:00:01") == 1000
    assert parse_datetime("1970-01-01T01:00:00+01:00") == 0
    with pytest.raises(ResetError, match="ISO 8601"):
        parse_datetime("yesterday")


def test_the_plan_lists_each_action(tmp_path: Path) -> None:
    plan = ResetPlan("wc", {TopicPartition("in", 1): 0, TopicPartition("in", 0): 5}, ["wc-a-changelog"], tmp_path)
    assert plan.describe() == ["reset offset of in-0 for group wc to 5", "reset offset of in-1 for group wc to 0",
                               "delete internal topic wc-a-changelog", f"remove local state directory {tmp_path}"]
    assert ResetPlan("wc").describe() == ["nothing to reset for application wc"]


def test_the_command_rejects_a_bad_time_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reset", "--application-id", "wc", "--to-datetime", "soon"]) == 2
    assert capsys.readouterr().err.startswith("streamer: error: --to-datetime 'soon' is not an ISO 8601")


def test_the_command_needs_an_application_id(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMER_APPLICATION_ID", raising=False)
    assert main(["reset", "--dry-run"]) == 2
    assert "application_id" in capsys.readouterr().err
