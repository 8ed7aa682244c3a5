"""ClusterMetadata (contract C1): where a store's key lives, and what lookups say while tasks move."""

from __future__ import annotations

import pytest

from apps.wordcount import build
from streamer.config import StreamerConfig, load_config, split_host_port
from streamer.errors import ConfigError, TopologyError
from streamer.partitioner import default_partition
from streamer.runtime.cluster import ClusterMetadata
from streamer.serde import STRING

APP = "meta"
STORE = "word-counts"


def _cluster(partitions: int = 4, local: str | None = "10.0.0.1:8080") -> ClusterMetadata:
    cluster = ClusterMetadata(build().build(), APP, local)
    cluster.set_partition_counts({"streams-plaintext-input": 7, f"{APP}-words-by-word-repartition": partitions})
    return cluster


def test_a_key_is_in_the_partition_its_records_go_to() -> None:
    cluster = _cluster(partitions=4)
    for word in ("apple", "banana", "", "ünïcode", "x" * 100):
        data = STRING.serialize(word) or b""
        # the count's sub-topology (1) reads the repartition topic, which the collector fills by murmur2
        assert cluster.task_for_key(STORE, data) == (1, default_partition(data, 4))
    assert cluster.tasks_of(STORE) == [(1, 0), (1, 1), (1, 2), (1, 3)]
    with pytest.raises(TopologyError, match="no store 'nope'.*word-counts"):
        cluster.task_for_key("nope", b"k")
    assert cluster.store_kinds() == {STORE: "key_value"}


def test_owners_come_from_the_assignment_and_none_while_rebalancing() -> None:
    cluster = _cluster(partitions=2)
    cluster.local_tasks = lambda: {(1, 0)}
    assert not cluster.assignment_known
    assert cluster.active_endpoint((1, 0)) == "10.0.0.1:8080"  # before any assignment: what runs here
    assert cluster.active_endpoint((1, 1)) is None
    assert [h["active"] for h in cluster.hosts()] == [{STORE: [0]}]

    cluster.update({"10.0.0.1:8080": {(0, 0), (1, 1)}, "10.0.0.2:8080": {(1, 0)}}, {"10.0.0.1:8080": {(1, 0)}})
    assert cluster.assignment_known and not cluster.rebalancing
    key = next(w for w in ("a", "b", "c", "d", "e") if default_partition(w.encode(), 2) == 0).encode()
    found = cluster.key_metadata(STORE, key)
    assert (found.partition, found.active, found.standbys) == (0, "10.0.0.2:8080", ("10.0.0.1:8080",))
    hosts = {h["endpoint"]: h for h in cluster.hosts()}
    assert hosts["10.0.0.1:8080"]["active"] == {STORE: [1]} and hosts["10.0.0.1:8080"]["standby"] == {STORE: [0]}
    assert hosts["10.0.0.1:8080"]["active_tasks"] == ["0_0", "1_1"]

    cluster.mark_rebalancing()
    assert cluster.rebalancing and cluster.key_metadata(STORE, key).active is None
    cluster.update({"10.0.0.1:8080": {(1, 0), (1, 1)}}, {})
    assert not cluster.rebalancing and cluster.key_metadata(STORE, key).active == "10.0.0.1:8080"


def test_application_server_must_be_host_and_port() -> None:
    assert split_host_port("worker-1.example:8080") == ("worker-1.example", 8080)
    assert split_host_port("[::1]:9000") == ("::1", 9000)
    assert StreamerConfig(application_server="127.0.0.1:1").application_server == "127.0.0.1:1"
    for bad in ("localhost", ":8080", "host:0", "host:65536", "host:http", "::1:8080", "[::1:8080"):
        with pytest.raises(ConfigError, match="application_server must be host:port"):
            load_config(cli={"application_server": bad}, environ={})
