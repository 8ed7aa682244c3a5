"""Unit tests of the pieces that need no broker: partitioner, serdes, config, app loading, compiler."""

from __future__ import annotations

import pytest

from streamer import JSON, STRING, FunctionSerde, StreamsBuilder
from streamer.app_loader import load_topology
from streamer.config import StreamerConfig, app_setting, load_config
from streamer.errors import AppLoadError, ConfigError, SerializationError, TopologyError
import random

from streamer import partitioner
from streamer.partitioner import default_partition, default_partition_python, murmur2, murmur2_python
from streamer.serde import INT, FLOAT, deserialize_many, resolve_serde, serialize_many


@pytest.mark.parametrize(
    ("data", "signed_hash"),
    [  # the Java client's murmur2 of these strings (Kafka's own test vectors)
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_the_java_client(data: bytes, signed_hash: int) -> None:
    assert murmur2(data) == murmur2_python(data) == signed_hash & 0xFFFFFFFF


def test_default_partition_is_positive_modulo() -> None:
    assert default_partition(b"foobar", 7) == default_partition_python(b"foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7


def test_the_compiled_partitioner_is_installed_and_agrees_with_the_python_one() -> None:
    assert partitioner.murmur2 is not murmur2_python, "setup.py's C extension was not built; is gcc installed?"
    rng = random.Random(7)
    for length in list(range(40)) + [255, 1024]:
        data = rng.randbytes(length)
        assert murmur2(data) == murmur2_python(data)
        assert default_partition(data, 13) == default_partition_python(data, 13)


@pytest.mark.parametrize("serde,value", [(STRING, "héllo"), (JSON, {"a": [1, 2.5, None]}), (INT, -42), (FLOAT, 2.5)])
def test_serdes_round_trip_and_keep_tombstones(serde, value) -> None:
    assert serde.deserialize(serde.serialize(value)) == value
    assert serde.serialize(None) is None and serde.deserialize(None) is None
    assert deserialize_many(serde, serialize_many(serde, [value, None])) == [value, None]


def test_int_serde_is_kafkas_long_serde() -> None:
    assert INT.serialize(1) == b"\x00\x00\x00\x00\x00\x00\x00\x01"


def test_user_serdes_and_names() -> None:
    upper = FunctionSerde(lambda s: s.upper().encode(), lambda b: b.decode().lower())
    assert deserialize_many(upper, serialize_many(upper, ["ab"])) == ["ab"]
    assert resolve_serde("json") is JSON
    with pytest.raises(SerializationError, match="unknown serde name"):
        resolve_serde("yaml")
    with pytest.raises(SerializationError, match="not a serde"):
        resolve_serde(object())


def test_config_precedence_file_env_flags(tmp_path) -> None:
    path = tmp_path / "streamer.toml"
    path.write_text('[streamer]\napplication_id = "from-file"\ncommit_interval_ms = 700\n'
                    'max_poll_records = 11\n[streamer.app]\ngreeting = "hi"\n')
    env = {"STREAMER_COMMIT_INTERVAL_MS": "800", "STREAMER_MAX_POLL_RECORDS": "12"}
    config = load_config(path, {"max_poll_records": "13"}, environ=env)
    assert (config.application_id, config.commit_interval_ms, config.max_poll_records) == ("from-file", 800, 13)
    assert app_setting("greeting", "?") == "hi"


def test_config_defaults_depend_on_the_guarantee() -> None:
    assert StreamerConfig().effective_commit_interval_ms == 5000
    assert StreamerConfig(processing_guarantee="exactly_once").effective_commit_interval_ms == 100
    assert StreamerConfig(application_id="a").effective_dead_letter_topic == "a-dlq"


def test_config_errors_say_what_to_fix() -> None:
    with pytest.raises(ConfigError, match="processing_guarantee must be one of"):
        StreamerConfig(processing_guarantee="maybe_once")
    with pytest.raises(ConfigError, match="unknown setting 'comit_interval_ms'"):
        load_config(None, {"comit_interval_ms": "1"}, environ={})
    with pytest.raises(ConfigError, match="needs a number"):
        load_config(None, {"commit_interval_ms": "soon"}, environ={})
    with pytest.raises(ConfigError, match="--application-id"):
        StreamerConfig().require_application_id()


def test_app_loader_accepts_topology_builder_and_function() -> None:
    assert load_topology("apps.wordcount:topology").subtopologies
    assert load_topology("apps.wordcount:build").subtopologies
    with pytest.raises(AppLoadError, match="is a Pattern, not a Topology"):
        load_topology("apps.wordcount:_WORD")
    with pytest.raises(AppLoadError, match="must take no arguments"):
        load_topology("apps.wordcount:words")


def test_compiler_splits_at_repartition_topics_and_names_internal_topics() -> None:
    topology = load_topology("apps.wordcount:topology")
    assert len(topology.subtopologies) == 2
    assert [t.suffix for t in topology.repartition_topics] == ["words-by-word-repartition"]
    assert [s.changelog_topic("wc") for s in topology.stores()] == ["wc-word-counts-changelog"]
    text = topology.describe()
    assert "Sub-topology 0" in text and "Sub-topology 1" in text and "--> split-words" in text


def test_compiler_rejects_what_cannot_run() -> None:
    builder = StreamsBuilder()
    builder.stream("a")
    builder.stream("a")
    with pytest.raises(TopologyError, match="read by two sources"):
        builder.build()
    builder = StreamsBuilder()
    builder.stream("a").filter(lambda k, v: True, name="same")
    with pytest.raises(TopologyError, match="used twice"):
        builder.stream("b").filter(lambda k, v: True, name="same")
    with pytest.raises(TopologyError, match="may only use"):
        StreamsBuilder().stream("a").filter(lambda k, v: True, name="bad name")
    with pytest.raises(TopologyError, match="reads no topic"):
        StreamsBuilder().build()


def test_group_by_key_without_key_change_needs_no_repartition() -> None:
    builder = StreamsBuilder()
    builder.stream("a", key_serde="str").filter(lambda k, v: True).group_by_key().count("c")
    topology = builder.build()
    assert len(topology.subtopologies) == 1 and not topology.repartition_topics


def test_table_operations_and_aggregations_refuse_async_functions() -> None:
    async def slow(_key, value):
        return value

    table = StreamsBuilder().table("t", key_serde="str", value_serde="json")
    with pytest.raises(TopologyError, match="is async; table operations"):
        table.filter(slow)
    grouped = StreamsBuilder().stream("s", key_serde="str").group_by_key()
    with pytest.raises(TopologyError, match="is async"):
        grouped.reduce(slow)


def test_two_aggregations_of_one_grouping_share_its_repartition_topic() -> None:
    builder = StreamsBuilder()
    grouped = builder.stream("s", key_serde="str", value_serde="json").group_by(
        lambda _k, v: v["user"], key_serde="str", name="by-user")
    grouped.count("counts")
    grouped.reduce(lambda a, b: b, "latest")
    topology = builder.build()
    assert [t.suffix for t in topology.repartition_topics] == ["by-user-repartition"]
    assert len(topology.subtopologies) == 2 and len(topology.subtopologies[1].stores) == 2
