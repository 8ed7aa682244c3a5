"""server.properties for dev broker nodes: KRaft combined broker+controller on loopback.

Tuned for tests on a small machine: one-node defaults (replication 1) or three-node
defaults (replication 3), no auto-created topics, no rebalance delay, short session
timeouts allowed, small thread pools and buffers.
"""

from __future__ import annotations

import base64
import os
import socket
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when ``port`` on 127.0.0.1 can be bound (so a broker can listen there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def random_cluster_id() -> str:
    """A cluster id as Kafka's ``Uuid.randomUuid().toString()`` makes them: 16 bytes, url-safe base64."""
    while True:
        text = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that look like command-line flags
            return text


@dataclass(frozen=True)
class NodeSpec:
    """Where one node lives and listens."""

    node_id: int
    client_port: int
    controller_port: int
    directory: Path
    #: The plain-text listener of a node whose client listener is secured (None: not secured).
    internal_port: int | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.client_port}"

    @property
    def plaintext_bootstrap(self) -> str:
        """Where a client without TLS or SASL reaches this node (the client listener if not secured)."""
        return f"{HOST}:{self.internal_port or self.client_port}"

    @property
    def log_dir(self) -> Path:
        return self.directory / "data"

    @property
    def properties_path(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.directory / "broker.log"


def listener_properties(node: NodeSpec, client_protocol: str) -> dict[str, str]:
    """Listeners of ``node``: one plain-text listener, or a secured CLIENT one plus a plain INTERNAL one."""
    controller = f"CONTROLLER://{HOST}:{node.controller_port}"
    if client_protocol == "PLAINTEXT" or node.internal_port is None:
        return {
            "listeners": f"PLAINTEXT://{HOST}:{node.client_port},{controller}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{node.client_port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        }
    advertised = f"CLIENT://{HOST}:{node.client_port},INTERNAL://{HOST}:{node.internal_port}"
    return {
        "listeners": f"{advertised},{controller}",
        "advertised.listeners": advertised,
        "inter.broker.listener.name": "INTERNAL",
        "listener.security.protocol.map": f"CLIENT:{client_protocol},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
    }


def server_properties(node: NodeSpec, voters: list[NodeSpec], overrides: dict[str, str] | None = None,
                      client_protocol: str = "PLAINTEXT") -> dict[str, str]:
    """The broker settings of ``node`` in a cluster whose controllers are ``voters``."""
    replication = str(min(3, len(voters)))
    min_isr = "2" if len(voters) >= 3 else "1"
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": ",".join(f"{v.node_id}@{HOST}:{v.controller_port}" for v in voters),
        **listener_properties(node, client_protocol),
        "controller.listener.names": "CONTROLLER",
        "log.dirs": str(node.log_dir),
        "num.partitions": "1",
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "group.consumer.min.session.timeout.ms": "1000",
        "group.consumer.session.timeout.ms": "10000",
        "group.consumer.min.heartbeat.interval.ms": "500",
        "group.consumer.heartbeat.interval.ms": "1000",
        # A killed node is fenced (and leaves the ISRs) after 3 s, not the default 9 s.
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
        "replica.lag.time.max.ms": "5000",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "4",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        "log.cleaner.backoff.ms": "1000",
        "log.retention.check.interval.ms": "60000",
        # Keep records whatever their timestamps: event-time apps and tests replay data from
        # long ago, which a time retention would delete within a minute of producing it.
        "log.retention.ms": "-1",
        "delete.topic.enable": "true",
        "controlled.shutdown.enable": "true",
    }
    settings.update(overrides or {})
    return settings


def write_properties(path: Path, settings: dict[str, str]) -> None:
    """Write ``settings`` as a Java properties file (values escaped where Java needs it)."""
    lines = [f"{key}={_escape(value)}" for key, value in settings.items()]
    path.write_text("# written by streamer.devbroker\n" + "\n".join(lines) + "\n")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
