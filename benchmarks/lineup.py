"""The contenders: how each is installed or built, and the command that runs one workload.

Every contender gets the same ``AppSpec`` (as ``BENCH_*`` variables) and, for streamer,
also as ``streamer run`` flags. Peers run from virtualenvs or a Maven build in streamer's
cache (see ``benchmarks/cache.py``), prepared once before any timing.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

from benchmarks.cache import Unavailable, ensure_maven_build, ensure_venv
from benchmarks.contenders.spec import GUARANTEES, AppSpec

REPO = Path(__file__).resolve().parent.parent
QUIX_REQUIREMENTS = ["quixstreams==3.28.1"]
FAUST_REQUIREMENTS = ["faust-streaming[rocksdict]==0.15.3", "orjson>=3.9"]
#: Used when Maven Central has no kafka-streams of the broker's own version.
FALLBACK_KAFKA_STREAMS_VERSION = "4.3.1"
#: Heap for the Kafka Streams JVM: a usual production setting; the default (1/4 of RAM) would
#: let the heap, and so the RSS, grow far beyond what the workload needs.
JAVA_HEAP = "1g"
FAUST_LACKS = {
    "windowed-close": "Faust has no emit on window close by stream time: its on_window_close fires from a "
                      "wall-clock cleanup timer (table_cleanup_interval) for windows stale against time.time()",
}


class Contender:
    """A framework (or the bare-client ceiling) that can run the workloads."""

    name = ""
    guarantees: tuple[str, ...] = GUARANTEES
    #: Workloads the contender has no way to run, and why (reported as not applicable).
    lacks: dict[str, str] = {}

    def __init__(self) -> None:
        self.version = ""

    def prepare(self) -> None:
        """Install or build what the contender needs; raises ``Unavailable`` with the reason."""

    def argv(self, spec: AppSpec) -> list[str]:
        raise NotImplementedError

    def env(self, spec: AppSpec) -> dict[str, str]:
        """The process environment: ours without streamer settings, plus the spec."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMER_", "BENCH_", "PYTHONPATH"))}
        env.update(spec.to_env())
        env["PYTHONPATH"] = str(REPO)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def why_not(self, workload: str) -> str | None:
        """Why this contender cannot run ``workload`` here, or None; asked after ``prepare``."""
        return self.lacks.get(workload)

    def supports(self, workload: str, guarantee: str) -> bool:
        return guarantee in self.guarantees and self.why_not(workload) is None

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}".strip()


class Ceiling(Contender):
    """A bare aiokafka loop: the most a Python process gets out of this broker and machine."""

    name = "ceiling"

    def prepare(self) -> None:
        self.version = "aiokafka " + metadata.version("aiokafka")

    def argv(self, spec: AppSpec) -> list[str]:
        return [sys.executable, "-m", "benchmarks.contenders.ceiling"]


class Streamer(Contender):
    """Our own ``streamer run``, from the project's virtualenv."""

    name = "streamer"

    def __init__(self, v2: bool = False) -> None:
        super().__init__()
        #: exactly-once as ``exactly_once_v2`` (one transaction per worker, as Kafka Streams' contender runs);
        #: its own contender, ``streamer-v2``
        self.v2 = v2
        if v2:
            self.name = "streamer-v2"
            self.guarantees = ("exactly_once",)  # at-least-once is the same as streamer's

    def prepare(self) -> None:
        self.version = metadata.version("streamer")

    @property
    def label(self) -> str:
        return super().label + (" (exactly_once_v2)" if self.v2 else "")

    def why_not(self, workload: str) -> str | None:
        return _streamer_cannot_build(workload)

    def argv(self, spec: AppSpec) -> list[str]:
        script = Path(sys.executable).parent / "streamer"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "streamer.cli"]
        return command + [
            "run", f"benchmarks.contenders.streamer_app:{_entry_point(spec.workload)}",
            "--bootstrap-servers", spec.bootstrap,
            "--application-id", spec.app_id,
            "--processing-guarantee", "exactly_once_v2" if self.v2 and spec.exactly_once else spec.guarantee,
            "--state-dir", spec.state_dir,
            "--commit-interval-ms", str(spec.commit_interval_ms),
            "--log-level", "WARNING",
        ]


class PythonPeer(Contender):
    """A Python framework in a virtualenv of its own, running one of our app modules."""

    def __init__(self, name: str, requirements: list[str], module: str, args: tuple[str, ...] = (),
                 lacks: dict[str, str] | None = None) -> None:
        super().__init__()
        self.name, self.requirements, self.module, self.args = name, requirements, module, args
        self.lacks = lacks or {}
        self.python: Path | None = None

    def prepare(self) -> None:
        self.python = ensure_venv(self.name, self.requirements)
        self.version = next((r.split("==")[1] for r in self.requirements if "==" in r), "")

    def argv(self, spec: AppSpec) -> list[str]:
        assert self.python is not None, "prepare() first"
        return [str(self.python), "-m", self.module, *self.args]


class KafkaStreams(Contender):
    """Apache Kafka Streams on the JDK, built with Maven from ``contenders/kafka-streams``."""

    name = "kafka-streams"

    def __init__(self, version: str | None = None, threads: int = 1) -> None:
        super().__init__()
        #: num.stream.threads; more than one is its own contender, ``kafka-streams-<n>t``
        self.threads = threads
        if threads != 1:
            self.name = f"kafka-streams-{threads}t"
        self.wanted = [version] if version else [_broker_kafka_version(), FALLBACK_KAFKA_STREAMS_VERSION]
        self.version = self.wanted[0]
        self.classpath = ""

    def prepare(self) -> None:
        if shutil.which("java") is None:
            raise Unavailable("no 'java' on PATH (Kafka Streams needs a JDK 17+)")
        problems = []
        for version in dict.fromkeys(self.wanted):  # the broker's version first, then the fallback
            try:
                target = ensure_maven_build(REPO / "benchmarks" / "contenders" / "kafka-streams", "kafka-streams",
                                            {"kafka.version": version})
            except Unavailable as error:
                problems.append(f"{version}: {error}")
                continue
            self.version = version
            self.classpath = f"{target / 'bench-kafka-streams.jar'}:{target / 'libs'}/*"
            return
        raise Unavailable("\n".join(problems))

    def env(self, spec: AppSpec) -> dict[str, str]:
        return {**super().env(spec), "BENCH_JAVA_THREADS": str(self.threads)}

    @property
    def label(self) -> str:
        return f"kafka-streams {self.version}" + (f" ({self.threads} threads)" if self.threads != 1 else "")

    def argv(self, spec: AppSpec) -> list[str]:
        return ["java", f"-Xmx{JAVA_HEAP}", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp", self.classpath, "streamer.bench.BenchApp"]


def _entry_point(workload: str) -> str:
    """The function in ``contenders/streamer_app.py`` that builds ``workload``'s topology."""
    return workload.replace("-", "_")


@functools.cache
def _streamer_cannot_build(workload: str) -> str | None:
    """Why this checkout's streamer cannot build the workload's topology (a DSL still missing)."""
    app = importlib.import_module("benchmarks.contenders.streamer_app")
    try:
        getattr(app, _entry_point(workload))()
    except Exception as error:  # whatever building fails with, it cannot run: say what and go on
        return f"this streamer cannot build the topology: {type(error).__name__}: {error}"
    return None


def _broker_kafka_version() -> str:
    """The Kafka version of the project's dev broker, so client and broker are one family."""
    try:
        from streamer.devbroker import KAFKA_VERSION
    except ImportError:
        return FALLBACK_KAFKA_STREAMS_VERSION
    return str(KAFKA_VERSION)


def lineup(kafka_streams_version: str | None = None) -> dict[str, Contender]:
    """Every known contender by name, ceiling first."""
    contenders: list[Contender] = [
        Ceiling(),
        Streamer(),
        Streamer(v2=True),
        PythonPeer("quix", QUIX_REQUIREMENTS, "benchmarks.contenders.quix_app"),
        PythonPeer("faust", FAUST_REQUIREMENTS, "benchmarks.contenders.faust_app",
                   ("worker", "--loglevel", "warn"), FAUST_LACKS),
        KafkaStreams(kafka_streams_version),
        KafkaStreams(kafka_streams_version, threads=2),  # the machine has 2 cores: fair to the JVM
    ]
    return {c.name: c for c in contenders}
