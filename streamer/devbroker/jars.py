"""Fetches the official Apache Kafka jars from Maven Central, once per version, into a cache.

The jars come from Maven (``mvn dependency:copy-dependencies`` on the pom shipped beside
this module) so the project needs no download logic of its own and Maven's checksums apply.
A file lock makes concurrent callers (two pytest sessions, a demo and a test) wait for one
download instead of racing on the same directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from streamer.devbroker.errors import JarFetchError

# The newest Kafka release that every aiokafka 0.14 feature streamer uses works against
# (see docs/dev-broker.md for what was tested and why).
KAFKA_VERSION = "4.4.0"

_COMPLETE_MARKER = ".complete"
_MVN_TIMEOUT_S = 900.0


def cache_dir() -> Path:
    """Root of streamer's cache: ``$STREAMER_CACHE_DIR`` or ``~/.cache/streamer``."""
    override = os.environ.get("STREAMER_CACHE_DIR")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "streamer"


def libs_dir(version: str = KAFKA_VERSION) -> Path:
    """Where the jars of ``version`` live once fetched (may not exist yet)."""
    return cache_dir() / f"kafka-{version}" / "libs"


def jars_present(version: str = KAFKA_VERSION) -> bool:
    """True when a complete download of ``version`` is cached."""
    libs = libs_dir(version)
    return (libs / _COMPLETE_MARKER).is_file() and any(libs.glob(f"kafka_2.13-{version}.jar"))


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path``, held for the ``with`` block (blocks until free)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_jars(version: str = KAFKA_VERSION) -> Path:
    """Return the directory holding Kafka ``version``'s jars, downloading them with Maven if needed.

    Idempotent and safe to call from several processes at once.
    """
    libs = libs_dir(version)
    if jars_present(version):
        return libs
    with file_lock(libs.parent / ".lock"):
        if jars_present(version):  # another process finished while we waited
            return libs
        _download(version, libs)
    return libs


def _download(version: str, libs: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarFetchError(
            "Maven ('mvn') is not on PATH; install Maven (and a JDK 17+) to fetch the Kafka jars"
        )
    for stale in libs.parent.glob("libs-*"):  # staging dirs of runs killed mid-download (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    try:
        pom = staging / "pom.xml"
        pom.write_bytes(resources.files("streamer.devbroker").joinpath("pom.xml").read_bytes())
        out = staging / "libs"
        command = [
            mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(pom),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={out}",
            "-DincludeScope=runtime",
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S,
                                    stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as error:
            raise JarFetchError(f"Maven did not finish fetching Kafka {version} in {_MVN_TIMEOUT_S:.0f}s") from error
        if result.returncode != 0 or not (out / f"kafka_2.13-{version}.jar").is_file():
            tail = (result.stdout + result.stderr).strip()[-3000:]
            raise JarFetchError(f"Maven could not fetch Kafka {version} (exit {result.returncode}):\n{tail}")
        (out / _COMPLETE_MARKER).write_text(version + "\n")
        if libs.exists():  # a leftover incomplete copy from an interrupted run
            shutil.rmtree(libs)
        out.rename(libs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
