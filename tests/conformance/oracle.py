"""The Kafka Streams side of the conformance suite: build the Java oracle once, run every case in one JVM.

The oracle (``tests/conformance/java``) is built with Maven in a copy under
``~/.cache/streamer/conformance/<digest>/`` (or ``$STREAMER_CACHE_DIR``), where the digest
covers the Java sources and the Kafka version, so a machine (or a CI cache) builds it once per
change and the work tree stays clean. Maven resolves from ``~/.m2`` first, so a warm machine
builds offline. Run ``python -m tests.conformance.oracle`` to build it ahead of the tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from streamer.devbroker import KAFKA_VERSION, cache_dir
from streamer.devbroker.jars import file_lock

JAVA_SOURCES = Path(__file__).resolve().parent / "java"
_READY = ".oracle-ready"
_BUILD_TIMEOUT_S = 900.0
_RUN_TIMEOUT_S = 300.0
_MAIN_CLASS = "streamer.conformance.Oracle"


class OracleError(RuntimeError):
    """The Kafka Streams oracle could not be built or run; the message says why and what to do."""


def source_digest(version: str = KAFKA_VERSION) -> str:
    """A short digest of the oracle's sources (paths and contents) and the Kafka version."""
    digest = hashlib.sha256(f"kafka.version={version}\0".encode())
    for path in sorted(p for p in JAVA_SOURCES.rglob("*") if p.is_file() and "target" not in p.parts):
        digest.update(str(path.relative_to(JAVA_SOURCES)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_dir(version: str = KAFKA_VERSION) -> Path:
    """Where the oracle of these sources and ``version`` is (or will be) built."""
    return cache_dir() / "conformance" / f"oracle-{version}-{source_digest(version)}"


def ensure_oracle(version: str = KAFKA_VERSION) -> str:
    """The classpath of the built oracle, building it with Maven first if this version of the sources is new.

    Safe to call from several processes at once: a file lock makes the others wait for one build.
    """
    home = build_dir(version)
    if not (home / _READY).is_file():
        with file_lock(home.parent / ".build.lock"):
            if not (home / _READY).is_file():
                _build(home, version)
    target = home / "target"
    return f"{target / 'conformance-oracle.jar'}{os.pathsep}{target / 'libs'}{os.sep}*"


def _build(home: Path, version: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise OracleError("Maven ('mvn') is not on PATH; install Maven and a JDK 17+ to build the conformance oracle")
    for stale in home.parent.glob("oracle-*"):  # older sources' builds (we hold the lock)
        if stale != home:
            shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(JAVA_SOURCES, home, ignore=shutil.ignore_patterns("target"))
    command = [mvn, "-q", "-B", "-Dstyle.color=never", "-DskipTests", f"-Dkafka.version={version}", "package"]
    try:
        result = subprocess.run(command, cwd=home, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S,
                                stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as error:
        raise OracleError(f"Maven did not build the conformance oracle in {_BUILD_TIMEOUT_S:.0f}s") from error
    if result.returncode != 0 or not (home / "target" / "conformance-oracle.jar").is_file():
        tail = (result.stdout + result.stderr).strip()[-3000:]
        raise OracleError(f"Maven could not build the conformance oracle in {home} (exit {result.returncode}):\n{tail}")
    (home / _READY).write_text(f"{version} {source_digest(version)}\n")


def run_oracle(cases: list[dict[str, Any]], version: str = KAFKA_VERSION) -> dict[str, dict[str, Any]]:
    """Run ``cases`` (the oracle's input format, see Oracle.java) in Kafka Streams; results by case name.

    Each result is ``{"records": [...]}`` or ``{"error": java stack trace}``.
    """
    java = shutil.which("java")
    if java is None:
        raise OracleError("no 'java' on PATH; install a JDK 17+ to run the conformance oracle")
    classpath = ensure_oracle(version)
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="conformance-cases-") as document:
        json.dump({"cases": cases}, document)
        document.flush()
        command = [java, "-Dorg.slf4j.simpleLogger.defaultLogLevel=error", "-cp", classpath, _MAIN_CLASS,
                   document.name]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=_RUN_TIMEOUT_S,
                                    stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as error:
            raise OracleError(
                f"the conformance oracle did not finish {len(cases)} cases in {_RUN_TIMEOUT_S:.0f}s") from error
    if result.returncode != 0:
        raise OracleError(f"the conformance oracle failed (exit {result.returncode}):\n{result.stderr.strip()[-3000:]}")
    results: dict[str, dict[str, Any]] = json.loads(result.stdout)["results"]
    return results


if __name__ == "__main__":
    print(ensure_oracle())
