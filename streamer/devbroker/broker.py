"""DevBroker: a real Apache Kafka (KRaft, combined broker+controller nodes) on 127.0.0.1.

One node for tests and demos, or three for broker-failure tests. Each node is a ``java
kafka.Kafka`` process in its own process group; a watchdog process stops them (and removes
the temp data dir) should this Python process die without calling ``stop()``. The client
listener can be secured with TLS, SASL or both (see ``streamer.devbroker.security``).
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from streamer.devbroker import probe
from streamer.devbroker.config import (
    NodeSpec,
    free_port,
    port_is_free,
    random_cluster_id,
    server_properties,
    write_properties,
)
from streamer.devbroker.errors import BrokerStartError, DevBrokerError
from streamer.devbroker.jars import KAFKA_VERSION, ensure_jars
from streamer.devbroker.process import (
    NodeProcess,
    Watchdog,
    find_java,
    last_error,
    log4j_config,
    start_format,
    tail,
    wait_format,
)
from streamer.devbroker.security import DEFAULT_USERS, Security, SecurityProtocol, uses_sasl, uses_tls
from streamer.devbroker.tls import TlsFiles, ensure_tls_files

_STATE_FILE = "cluster.json"
_POLL_S = 0.2
_START_ATTEMPTS = 3  # auto-chosen ports can be taken by someone else before the JVM binds them


class DevBroker:
    """A local Kafka cluster of ``nodes`` combined broker+controller nodes (node indexes 0..n-1).

    ``data_dir`` keeps the data (and reuses it on the next start); without it a temp dir is
    used and removed by ``stop()``. ``port`` fixes the first node's client port (the others
    get the following ports); by default free ports are picked. ``security_protocol`` secures
    the client listener (``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``) for ``users`` (name ->
    password; default ``DEFAULT_USERS``); the nodes then also listen in plain text for
    themselves and for set-up (``plaintext_bootstrap_servers``). ``super_users`` (SASL only)
    turns on ACLs, with those users allowed everything.
    """

    def __init__(
        self,
        nodes: int = 1,
        data_dir: Path | None = None,
        version: str = KAFKA_VERSION,
        *,
        port: int | None = None,
        heap: str | None = None,
        config: dict[str, str] | None = None,
        security_protocol: SecurityProtocol = "PLAINTEXT",
        users: Mapping[str, str] | None = None,
        super_users: Sequence[str] = (),
    ) -> None:
        if nodes < 1:
            raise DevBrokerError(f"a dev broker needs at least one node, got {nodes}")
        self.nodes = nodes
        self.version = version
        self.heap = heap or ("512m" if nodes == 1 else "384m")
        self._fixed_port = port
        self._config = dict(config or {})
        chosen_users = dict(users if users is not None else DEFAULT_USERS) if uses_sasl(security_protocol) else {}
        # Checked now, completed with the certificates once the data dir is known (start()).
        self.security = Security(security_protocol, chosen_users,
                                 TlsFiles(Path()) if uses_tls(security_protocol) else None, tuple(super_users))
        self._given_dir = Path(data_dir).expanduser().resolve() if data_dir is not None else None
        self._dir: Path | None = None
        self._specs: list[NodeSpec] = []
        self._procs: list[NodeProcess | None] = []
        self._watchdog: Watchdog | None = None
        self._java = ""
        self._libs = Path()
        self._log4j = Path()
        self.cluster_id = ""

    # ---- public API -------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:port[,127.0.0.1:port...]`` of every node."""
        if not self._specs:
            raise DevBrokerError("the dev broker has not been started")
        return ",".join(spec.bootstrap for spec in self._specs)

    @property
    def plaintext_bootstrap_servers(self) -> str:
        """Every node's plain-text listener: ``bootstrap_servers`` itself unless the broker is secured."""
        if not self._specs:
            raise DevBrokerError("the dev broker has not been started")
        return ",".join(spec.plaintext_bootstrap for spec in self._specs)

    @property
    def security_protocol(self) -> SecurityProtocol:
        return self.security.protocol

    @property
    def tls(self) -> TlsFiles | None:
        """The CA, broker and client certificates of a TLS broker (after ``start()``), else None."""
        return self.security.tls if self._dir is not None else None

    def client_settings(self, user: str | None = None, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """The streamer settings a client of ``bootstrap_servers`` needs: bootstrap, protocol, files, user.

        ``StreamerConfig(application_id=..., **broker.client_settings())`` reaches this broker;
        ``user`` (default: the first) and ``mechanism`` (``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512``)
        matter under SASL only.
        """
        return {"bootstrap_servers": self.bootstrap_servers, **self.security.client_settings(user, mechanism)}

    @property
    def data_dir(self) -> Path:
        """The directory holding every node's config, data and ``broker.log``."""
        if self._dir is None:
            raise DevBrokerError("the dev broker has not been started")
        return self._dir

    def node_bootstrap(self, i: int) -> str:
        """``127.0.0.1:port`` of node ``i`` alone."""
        return self._spec(i).bootstrap

    def log_path(self, i: int = 0) -> Path:
        """Node ``i``'s log file (broker log4j output and JVM stdout/stderr)."""
        return self._spec(i).log_path

    def node_running(self, i: int) -> bool:
        proc = self._procs[i] if 0 <= i < len(self._procs) else None
        return proc is not None and proc.running()

    def node_pid(self, i: int) -> int | None:
        """The pid of node ``i``'s JVM while it runs, else None."""
        proc = self._procs[i] if 0 <= i < len(self._procs) else None
        return proc.pid if proc is not None and proc.running() else None

    @property
    def running(self) -> bool:
        return any(self.node_running(i) for i in range(len(self._procs)))

    def start(self, timeout: float = 90) -> None:
        """Fetch the jars if needed, format fresh storage, start every node, and wait until they answer."""
        if self._procs:
            raise DevBrokerError("the dev broker is already started")
        deadline = time.monotonic() + timeout
        self._libs = ensure_jars(self.version)
        self._java = find_java()
        self._watchdog = Watchdog()
        atexit.register(self.stop)
        try:
            self._prepare_dir()
            for attempt in range(1, _START_ATTEMPTS + 1):
                self._plan_nodes(fresh_ports=attempt > 1)
                self._format()
                self._procs = [self._launch(spec) for spec in self._specs]
                try:
                    self._wait_ready(set(range(self.nodes)), deadline)
                    return
                except BrokerStartError:
                    if attempt == _START_ATTEMPTS or not self._lost_a_port():
                        raise
                    self._stop_nodes()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after a grace period) and remove a temp data dir."""
        atexit.unregister(self.stop)
        self._stop_nodes()
        if self._dir is not None and self._given_dir is None:
            shutil.rmtree(self._dir, ignore_errors=True)
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None
        self._procs = []

    def stop_node(self, i: int, timeout: float = 30.0) -> None:
        """Shut node ``i`` down cleanly (SIGTERM; SIGKILL if it takes over ``timeout`` s)."""
        proc = self._proc(i)
        if proc is not None:
            proc.stop(timeout)

    def kill_node(self, i: int) -> None:
        """SIGKILL node ``i``, as a crash would; the other nodes keep running."""
        proc = self._proc(i)
        if proc is not None:
            proc.kill()

    def restart_node(self, i: int, timeout: float = 60.0) -> None:
        """Start node ``i`` again (stopping it first if it runs) and wait until the cluster lists it.

        Blocks; from async code call it as ``await asyncio.to_thread(broker.restart_node, i)``.
        """
        self.stop_node(i)  # also checks that the broker was started
        self._procs[i] = self._launch(self._spec(i))
        self._wait_ready({i}, time.monotonic() + timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = ",".join(s.bootstrap for s in self._specs) or "not started"
        return f"DevBroker(nodes={self.nodes}, version={self.version!r}, {where})"

    # ---- internals --------------------------------------------------------------------

    def _spec(self, i: int) -> NodeSpec:
        if not self._specs:
            raise DevBrokerError("the dev broker has not been started")
        if not 0 <= i < len(self._specs):
            raise DevBrokerError(f"no node {i}: this dev broker has nodes 0..{len(self._specs) - 1}")
        return self._specs[i]

    def _proc(self, i: int) -> NodeProcess | None:
        self._spec(i)
        if not self._procs:
            raise DevBrokerError("the dev broker is not running (start() it first)")
        return self._procs[i]

    def _prepare_dir(self) -> None:
        assert self._watchdog is not None
        if self._given_dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="streamer-kafka-"))
            self._watchdog.remove_later(self._dir)
        else:
            self._dir = self._given_dir
            self._dir.mkdir(parents=True, exist_ok=True)
        self._log4j = log4j_config(self._dir)
        if self.security.tls is not None:
            self.security = dataclasses.replace(self.security, tls=ensure_tls_files(self._dir / "tls"))
        saved = self._read_state()
        if saved:
            if saved.get("nodes") != self.nodes:
                raise DevBrokerError(f"{self._dir} holds a {saved.get('nodes')}-node cluster, not {self.nodes} nodes")
            if uses_sasl(self.security.protocol) and saved.get("scram_users") != self._scram_fingerprint():
                raise DevBrokerError(f"{self._dir} was formatted with other SCRAM users (they are set when the "
                                     f"storage is formatted): use another data dir for these users")
            self.cluster_id = str(saved["cluster_id"])
        else:
            self.cluster_id = random_cluster_id()

    def _scram_fingerprint(self) -> str:
        """A digest of the SCRAM users the storage is formatted with (so a kept dir can be checked)."""
        return hashlib.sha256(json.dumps(sorted(self.security.users.items())).encode()).hexdigest()

    def _read_state(self) -> dict[str, object]:
        assert self._dir is not None
        try:
            state: dict[str, object] = json.loads((self._dir / _STATE_FILE).read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as error:
            raise DevBrokerError(f"{self._dir / _STATE_FILE} is corrupt: {error}") from error
        return state

    def _plan_nodes(self, fresh_ports: bool) -> None:
        assert self._dir is not None
        client_ports = self._client_ports(fresh_ports)
        taken = set(client_ports)

        def other_port() -> int:
            port = free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            return port

        controller_ports = [other_port() for _ in range(self.nodes)]
        internal_ports: list[int | None] = [other_port() if self.security.secured else None
                                            for _ in range(self.nodes)]
        self._specs = [NodeSpec(i + 1, client_ports[i], controller_ports[i], self._dir / f"node-{i}",
                                internal_ports[i]) for i in range(self.nodes)]
        overrides = self.security.listener_properties() | self._config
        for spec in self._specs:
            spec.directory.mkdir(parents=True, exist_ok=True)
            write_properties(spec.properties_path,
                             server_properties(spec, self._specs, overrides, self.security.protocol))
        state = {"cluster_id": self.cluster_id, "nodes": self.nodes, "version": self.version,
                 "client_ports": client_ports}
        if uses_sasl(self.security.protocol):
            state["scram_users"] = self._scram_fingerprint()
        (self._dir / _STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def _client_ports(self, fresh: bool) -> list[int]:
        if self._fixed_port:
            wanted = [self._fixed_port + i for i in range(self.nodes)]
            busy = [p for p in wanted if not port_is_free(p)]
            if busy:
                raise BrokerStartError(f"port(s) {busy} on 127.0.0.1 are in use; "
                                       f"pick another --port or stop what uses them")
            return wanted
        saved = self._read_state().get("client_ports") if self._given_dir is not None else None
        if not fresh and isinstance(saved, list) and all(port_is_free(int(p)) for p in saved):
            return [int(p) for p in saved]  # a kept data dir keeps its address when it can
        ports: list[int] = []
        while len(ports) < self.nodes:
            port = free_port()
            if port not in ports:
                ports.append(port)
        return ports

    def _format(self) -> None:
        pending = []
        for spec in self._specs:
            if (spec.log_dir / "meta.properties").exists():
                continue
            pending.append((start_format(self._java, self._libs, spec, self.cluster_id, self._log4j,
                                         self.security.format_arguments()), spec))
        for process, spec in pending:
            wait_format(process, spec)

    def _launch(self, spec: NodeSpec) -> NodeProcess:
        assert self._watchdog is not None
        return NodeProcess(self._java, self._libs, spec, self.heap, self._log4j, self._watchdog)

    def _wait_ready(self, indexes: set[int], deadline: float) -> None:
        expected = {self._specs[i].node_id for i in range(len(self._specs)) if self.node_running(i)} | {
            self._specs[i].node_id for i in indexes}
        while True:
            for i in indexes:
                proc = self._procs[i]
                if proc is None or not proc.running():
                    code = proc.returncode if proc is not None else None
                    log = self._specs[i].log_path
                    cause = last_error(log)
                    raise BrokerStartError(f"Kafka node {i} exited with code {code} while starting"
                                           f"{': ' + cause if cause else ''}\n--- the end of {log}:\n{tail(log)}")
            if all(probe.port_open(self._specs[i].client_port) for i in indexes):
                bootstrap = ",".join(self._specs[i].plaintext_bootstrap for i in sorted(indexes))
                if probe.answers(bootstrap, expected):
                    return
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- node {i}: {self._specs[i].log_path}\n{tail(self._specs[i].log_path, 25)}"
                                 for i in sorted(indexes))
                raise BrokerStartError(f"Kafka did not answer at {self.bootstrap_servers} in time; logs:\n{logs}")
            time.sleep(_POLL_S)  # polling a condition (the JVM gives us nothing to wait on)

    def _lost_a_port(self) -> bool:
        """True when a node failed because its port was taken meanwhile (worth retrying elsewhere)."""
        if self._fixed_port:
            return False
        return any("Address already in use" in tail(spec.log_path, 200) for spec in self._specs)

    def _stop_nodes(self) -> None:
        # Data about to be deleted needs no long goodbye: the last controller of a cluster
        # otherwise waits ~5 s for voters that are already gone.
        grace = 20.0 if self._given_dir is not None else 3.0
        procs = [p for p in self._procs if p is not None]
        for proc in procs:
            proc.begin_stop()
        deadline = time.monotonic() + grace
        for proc in procs:
            proc.stop(timeout=max(0.1, deadline - time.monotonic()))
