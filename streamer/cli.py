"""The ``streamer`` command: run a worker, describe a topology, manage the dev broker."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from dataclasses import fields
from typing import Any

from streamer.app_loader import load_topology
from streamer.config import APP_SETTING_PREFIX, StreamerConfig, load_config
from streamer.errors import StreamerError
from streamer.query_client import add_query_parser, run_query

log = logging.getLogger("streamer")

#: Settings that get a command-line flag of their own (the rest: --set name=value or the file).
_FLAGS = (
    "bootstrap_servers",
    "application_id",
    "processing_guarantee",
    "commit_interval_ms",
    "state_dir",
    "state_store",
    "deserialization_error_handler",
    "processing_error_handler",
    "production_error_handler",
    "dead_letter_topic",
    "replication_factor",
    "broker_timeout_s",
    "log_level",
    "metrics_port",
    "application_server",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamer", description="Kafka Streams for Python")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a worker of a topology until SIGTERM or Ctrl-C")
    run.add_argument("app", help="module:attr naming a Topology, a StreamsBuilder or a function returning one")
    _add_settings(run)
    describe = commands.add_parser("describe", help="print the compiled topology")
    describe.add_argument("app")
    describe.add_argument("--application-id", default=None, help="fill in internal topic names")
    describe.add_argument("--format", choices=("text", "mermaid", "dot"), default="text",
                          help="text (default), a Mermaid flowchart, or a Graphviz dot graph")
    _add_reset(commands)
    add_query_parser(commands)
    commands.add_parser("dev-broker", help="fetch, start or stop the local development Kafka broker (see --help)")
    return parser


def _add_reset(commands: argparse._SubParsersAction) -> None:
    reset = commands.add_parser("reset", help="start an application over: input offsets, internal topics, state")
    reset.add_argument("app", nargs="?", default=None,
                       help="module:attr of the topology (optional: names its inputs and internal topics exactly)")
    for name in ("application_id", "bootstrap_servers", "state_dir"):
        reset.add_argument("--" + name.replace("_", "-"), dest=name, default=None)
    when = reset.add_mutually_exclusive_group()
    when.add_argument("--to-earliest", action="store_true", help="inputs from their earliest offsets (default)")
    when.add_argument("--to-datetime", default=None, metavar="ISO",
                      help="inputs from the first record at or after this time, e.g. 2024-05-01T12:00:00Z")
    reset.add_argument("--dry-run", action="store_true", help="print each action and change nothing")
    reset.add_argument("--config", default=None, help="a TOML file with settings (a [streamer] table)")
    reset.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                       help="any other setting, e.g. --set client_options=...")


def _reset(args: argparse.Namespace) -> int:
    from streamer.reset import ApplicationReset, parse_datetime

    cli = {name: getattr(args, name) for name in ("application_id", "bootstrap_servers", "state_dir")}
    cli.update(_pairs(args.settings, "--set"))
    config = load_config(args.config, cli)
    topology = load_topology(args.app) if args.app else None
    to_ms = parse_datetime(args.to_datetime) if args.to_datetime else None
    asyncio.run(ApplicationReset(config, topology, to_ms).run(dry_run=args.dry_run))
    return 0


def _add_settings(parser: argparse.ArgumentParser) -> None:
    defaults = {f.name: f.default for f in fields(StreamerConfig)}
    for name in _FLAGS:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None,
                            help=f"env STREAMER_{name.upper()}; default {defaults[name]!r}")
    parser.add_argument("--auto-create-topics", dest="auto_create_topics", action="store_const", const=True,
                        default=None, help="create missing source and sink topics")
    parser.add_argument("--config", default=None, help="a TOML file with settings (a [streamer] table)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="any other setting, e.g. --set max_poll_records=5000")
    parser.add_argument("--app-setting", dest="app_settings", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the app, read with streamer.app_setting(NAME, default)")


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            raise StreamerError(f"{flag} needs NAME=VALUE, got {item!r}")
        out[name.strip()] = value
    return out


def _run(args: argparse.Namespace) -> int:
    for name, value in _pairs(args.app_settings, "--app-setting").items():
        os.environ[APP_SETTING_PREFIX + name.upper()] = value
    cli = {name: getattr(args, name) for name in _FLAGS + ("auto_create_topics",)}
    cli.update(_pairs(args.settings, "--set"))
    config = load_config(args.config, cli)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config.require_application_id()
    topology = load_topology(args.app)
    from streamer.runtime.worker import Worker

    return asyncio.run(_serve(Worker(topology, config)))


async def _serve(worker: object) -> int:
    from streamer.runtime.worker import Worker

    assert isinstance(worker, Worker)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    loop.add_signal_handler(signal.SIGUSR1, _log_task_stacks)
    await worker.run()
    return 0


def _log_task_stacks() -> None:
    """SIGUSR1: log where every asyncio task of the worker waits, to see what a stuck worker is stuck on.

    A suspended task's stack holds only its outermost coroutine, so each line follows the
    chain of awaited coroutines down to the innermost one instead.
    """
    lines = []
    for task in asyncio.all_tasks():
        lines.append(f"  {task.get_name()}: {' -> '.join(_await_chain(task.get_coro())) or 'not started'}")
    log.warning("asyncio tasks on SIGUSR1:\n%s", "\n".join(lines))


def _await_chain(coro: Any) -> list[str]:
    """Where each coroutine in an await chain stands, outermost first (generators and awaitables too)."""
    steps: list[str] = []
    while coro is not None and len(steps) < 64:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            if not hasattr(coro, "cr_frame") and not hasattr(coro, "gi_frame"):
                steps.append(type(coro).__name__)  # a future or another awaitable at the bottom
            break
        steps.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return steps


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["dev-broker"]:  # everything after it, --help included, is the dev broker's
        from streamer.devbroker.cli import main as broker_main

        return broker_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "describe":
            from streamer.topology.render import render_topology

            print(render_topology(load_topology(args.app), args.format, args.application_id))
            return 0
        if args.command == "reset":
            return _reset(args)
        if args.command == "query":
            return run_query(args)
        return _run(args)
    except StreamerError as error:
        print(f"streamer: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
