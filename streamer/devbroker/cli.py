"""Command line of the dev broker: ``fetch``, ``start``, ``stop``, ``status``.

``start`` runs the broker in the background by default: it launches
``python -m streamer.devbroker start --foreground`` as a detached supervisor, waits until
the broker answers, and prints the bootstrap servers (last line of stdout) so scripts can
do ``BOOTSTRAP=$(python -m streamer.devbroker start)``. ``stop`` and ``status`` find that
supervisor through a state file under the cache dir.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from streamer.devbroker import probe
from streamer.devbroker.broker import DevBroker
from streamer.devbroker.errors import DevBrokerError
from streamer.devbroker.security import DEFAULT_USERS, SecurityProtocol
from streamer.devbroker.jars import KAFKA_VERSION, ensure_jars, jars_present
from streamer.devbroker.process import tail
from streamer.devbroker.state import (
    BrokerState,
    clear_state,
    is_supervisor,
    read_state,
    supervisor_log_path,
    write_state,
)
from streamer.errors import StreamerError

DEFAULT_PORT = 9092
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _StopRequested(Exception):
    """Raised in the main thread by a stop signal, so start-up is unwound and the broker stopped."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamer dev-broker",
                                     description="A local Apache Kafka (KRaft) on 127.0.0.1 for development.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="download the Kafka jars with Maven (once; cached)")
    fetch.add_argument("--version", default=KAFKA_VERSION, help=f"Kafka version (default {KAFKA_VERSION})")
    start = commands.add_parser("start", help="start a broker (in the background unless --foreground)")
    start.add_argument("--nodes", type=int, default=1, help="combined broker+controller nodes (default 1)")
    start.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"client port of the first node, the next nodes use the following ports "
                            f"(default {DEFAULT_PORT}; 0 picks free ports)")
    start.add_argument("--data-dir", type=Path, default=None,
                       help="keep data here and reuse it next time (default: a temp dir removed on stop)")
    start.add_argument("--foreground", action="store_true", help="run until SIGTERM or Ctrl-C")
    start.add_argument("--version", default=KAFKA_VERSION, help=f"Kafka version (default {KAFKA_VERSION})")
    start.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the broker (default 90)")
    start.add_argument("--tls", action="store_true",
                       help="secure the client listener with TLS (a CA and certificates are made in the data dir)")
    start.add_argument("--sasl", action="store_true",
                       help="require SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) on the client listener")
    start.add_argument("--user", action="append", default=None, metavar="NAME:PASSWORD",
                       help=f"a SASL user (repeatable; default {_default_user()})")
    stop = commands.add_parser("stop", help="stop the background broker")
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds before it is killed (default 60)")
    commands.add_parser("status", help="print the background broker's address; exit 1 if none runs")
    return parser


def _default_user() -> str:
    return ", ".join(f"{name}:{password}" for name, password in DEFAULT_USERS.items())


def _security(args: argparse.Namespace) -> tuple[SecurityProtocol, dict[str, str] | None]:
    """The security protocol and users the flags ask for."""
    protocol: SecurityProtocol = (("SASL_SSL" if args.tls else "SASL_PLAINTEXT") if args.sasl
                                  else ("SSL" if args.tls else "PLAINTEXT"))
    if args.user and not args.sasl:
        raise DevBrokerError("--user needs --sasl")
    users = None
    if args.user:
        pairs = [entry.partition(":") for entry in args.user]
        if any(not name or not sep or not password for name, sep, password in pairs):
            raise DevBrokerError(f"--user takes NAME:PASSWORD, got {args.user}")
        users = {name: password for name, _, password in pairs}
    return protocol, users


def _settings_flags(settings: dict[str, str]) -> str:
    """``streamer run`` flags for a client of the broker (what the user copies)."""
    flags = [f"--bootstrap-servers {settings['bootstrap_servers']}"]
    flags += [f"--set {name}={value}" for name, value in settings.items() if name != "bootstrap_servers"]
    return " ".join(flags)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``streamer dev-broker`` and ``python -m streamer.devbroker``."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "fetch":
            if not jars_present(args.version):
                print(f"fetching the Apache Kafka {args.version} jars from Maven Central (once) ...",
                      file=sys.stderr, flush=True)
            print(ensure_jars(args.version))
            return 0
        if args.command == "start":
            return _foreground(args) if args.foreground else _background(args)
        if args.command == "stop":
            return _stop(args.timeout)
        return _status()
    except StreamerError as error:
        print(f"streamer dev-broker: error: {error}", file=sys.stderr)
        return 2


def _foreground(args: argparse.Namespace) -> int:
    running = read_state()
    if running is not None:
        print(f"a dev broker already runs at {running.bootstrap_servers} (pid {running.pid}); "
              f"stop it first", file=sys.stderr)
        return 1
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()
        raise _StopRequested(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    protocol, users = _security(args)
    broker = DevBroker(args.nodes, args.data_dir, args.version, port=args.port or None,
                       security_protocol=protocol, users=users)
    try:
        try:
            broker.start(timeout=args.timeout)
            settings = broker.client_settings()
            write_state(BrokerState(pid=os.getpid(), bootstrap_servers=broker.bootstrap_servers,
                                    nodes=args.nodes, version=args.version, data_dir=str(broker.data_dir),
                                    log=str(broker.log_path(0)), security_protocol=protocol,
                                    plaintext_bootstrap_servers=broker.plaintext_bootstrap_servers,
                                    client_settings=settings))
            print(f"Kafka {args.version} ({args.nodes} node(s)) ready; data and logs in {broker.data_dir}; "
                  f"Ctrl-C or SIGTERM stops it", file=sys.stderr, flush=True)
            if protocol != "PLAINTEXT":
                print(f"{protocol} on {broker.bootstrap_servers} (plain text for set-up on "
                      f"{broker.plaintext_bootstrap_servers}); clients: {_settings_flags(settings)}",
                      file=sys.stderr, flush=True)
            print(broker.bootstrap_servers, flush=True)
            return _supervise(broker, stop_requested)
        except _StopRequested:
            return 0
    finally:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # no second signal may interrupt the shutdown
        broker.stop()
        clear_state(os.getpid())
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(broker: DevBroker, stop_requested: threading.Event) -> int:
    """Wait for a stop signal; give up (exit 1) if a node dies on its own."""
    while not stop_requested.wait(1.0):
        dead = [i for i in range(broker.nodes) if not broker.node_running(i)]
        if dead:
            print(f"streamer dev-broker: node(s) {dead} exited; see {broker.log_path(dead[0])}:\n"
                  f"{tail(broker.log_path(dead[0]))}", file=sys.stderr)
            return 1
    return 0


def _background(args: argparse.Namespace) -> int:
    _security(args)  # bad flags fail here, not in the detached supervisor
    running = read_state()
    if running is not None:
        print(f"a dev broker already runs (pid {running.pid})", file=sys.stderr)
        print(running.bootstrap_servers)
        return 0
    command = [sys.executable, "-m", "streamer.devbroker", "start", "--foreground",
               "--nodes", str(args.nodes), "--port", str(args.port), "--version", args.version,
               "--timeout", str(args.timeout)]
    command += ["--tls"] * args.tls + ["--sasl"] * args.sasl
    for user in args.user or []:
        command += ["--user", user]
    if args.data_dir is not None:
        command += ["--data-dir", str(args.data_dir.expanduser().resolve())]
    log_path = supervisor_log_path()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        supervisor = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
    deadline = time.monotonic() + args.timeout + 180  # the first run also downloads the jars
    while True:
        state = read_state()
        if state is not None and state.pid == supervisor.pid:
            print(f"dev broker started (pid {state.pid}); data and logs in {state.data_dir}; "
                  f"stop it with: python -m streamer.devbroker stop", file=sys.stderr)
            if state.security_protocol != "PLAINTEXT":
                print(f"{state.security_protocol}; plain text for set-up on {state.plaintext_bootstrap_servers}; "
                      f"clients: {_settings_flags(state.client_settings)}", file=sys.stderr)
            print(state.bootstrap_servers)
            return 0
        if supervisor.poll() is not None:
            print(f"streamer dev-broker: the broker did not start (exit {supervisor.returncode}); "
                  f"{log_path}:\n{tail(log_path)}", file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            supervisor.terminate()
            supervisor.wait()
            print(f"streamer dev-broker: no broker after {args.timeout:.0f}s; {log_path}:\n{tail(log_path)}",
                  file=sys.stderr)
            return 1
        time.sleep(0.2)  # polling the state file the supervisor writes when ready


def _stop(timeout: float) -> int:
    state = read_state()
    if state is None:
        clear_state()
        print("no dev broker is running", file=sys.stderr)
        return 0
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_supervisor(state.pid):
        if time.monotonic() > deadline:
            os.kill(state.pid, signal.SIGKILL)  # its watchdog then kills the JVMs
            print(f"the dev broker (pid {state.pid}) did not stop in {timeout:.0f}s; killed", file=sys.stderr)
            break
        time.sleep(0.1)  # the supervisor is not our child: nothing to wait() on
    clear_state(state.pid)
    print(f"dev broker at {state.bootstrap_servers} stopped", file=sys.stderr)
    return 0


def _status() -> int:
    state = read_state()
    if state is None:
        print("no dev broker is running", file=sys.stderr)
        return 1
    answering = probe.answers(state.plaintext_bootstrap_servers or state.bootstrap_servers, set())
    print(f"{state.bootstrap_servers}\n"
          f"  Kafka {state.version}, {state.nodes} node(s), pid {state.pid}, "
          f"{'answering' if answering else 'NOT answering'}\n"
          f"  data: {state.data_dir}\n  log:  {state.log}")
    if state.security_protocol != "PLAINTEXT":
        print(f"  security: {state.security_protocol}; plain text on {state.plaintext_bootstrap_servers}\n"
              f"  clients: {_settings_flags(state.client_settings)}")
    return 0 if answering else 1

