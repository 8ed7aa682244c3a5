"""A real schema registry on loopback for tests and demos: Apicurio Registry, in memory.

Confluent's own registry is not published to Maven Central; Apicurio Registry is, as a
runnable Quarkus application (``io.apicurio:apicurio-registry-app``, classifier ``all``,
a zip of the runner jar and its libs), and it serves the Confluent-compatible API at
``/apis/ccompat/v7``. Maven fetches the zip once into ``~/.cache/streamer`` (like the dev
broker's Kafka jars); the server runs on JDK 17 with in-memory storage, so each start is
an empty registry.

    python -m streamer.schema_registry.devserver fetch
    python -m streamer.schema_registry.devserver start [--port 8081]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from streamer.devbroker.config import free_port
from streamer.devbroker.jars import cache_dir, file_lock
from streamer.devbroker.process import Watchdog, find_java, tail
from streamer.errors import SchemaRegistryError

#: The newest Apicurio release whose Maven artifacts include the runnable application (3.x publish only its jar).
APICURIO_VERSION = "2.6.13.Final"
CCOMPAT_PATH = "/apis/ccompat/v7"
_COMPLETE_MARKER = ".complete"
_MVN_TIMEOUT_S = 900.0


def server_dir(version: str = APICURIO_VERSION) -> Path:
    """Where the unpacked application of ``version`` lives once fetched (may not exist yet)."""
    return cache_dir() / f"apicurio-registry-{version}"


def _runner(version: str) -> Path:
    return server_dir(version) / f"apicurio-registry-app-{version}-runner.jar"


def ensure_server(version: str = APICURIO_VERSION) -> Path:
    """The runner jar of Apicurio ``version``, fetched with Maven and unpacked if not cached yet (process-safe)."""
    target = server_dir(version)
    if (target / _COMPLETE_MARKER).is_file():
        return _runner(version)
    with file_lock(target.parent / f".apicurio-{version}.lock"):
        if not (target / _COMPLETE_MARKER).is_file():
            _download(version, target)
    return _runner(version)


def _download(version: str, target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SchemaRegistryError("Maven ('mvn') is not on PATH; it fetches the Apicurio Registry the tests run")
    staging = Path(tempfile.mkdtemp(prefix="apicurio-", dir=target.parent))
    try:
        command = [mvn, "-q", "-B", "-Dstyle.color=never", "dependency:copy",
                   f"-Dartifact=io.apicurio:apicurio-registry-app:{version}:zip:all", f"-DoutputDirectory={staging}"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S,
                                    stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as error:
            raise SchemaRegistryError(f"Maven did not fetch Apicurio Registry {version} in {_MVN_TIMEOUT_S:.0f}s") \
                from error
        archive = staging / f"apicurio-registry-app-{version}-all.zip"
        if result.returncode != 0 or not archive.is_file():
            raise SchemaRegistryError(f"Maven could not fetch Apicurio Registry {version} (exit {result.returncode}):"
                                      f"\n{(result.stdout + result.stderr).strip()[-3000:]}")
        unpacked = staging / "app"
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(unpacked)
        archive.unlink()
        (unpacked / _COMPLETE_MARKER).write_text(version + "\n")
        if target.exists():  # an incomplete copy from an interrupted run
            shutil.rmtree(target)
        unpacked.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class RegistryServer:
    """One Apicurio Registry JVM on 127.0.0.1, empty, until ``stop`` (or until this process dies)."""

    def __init__(self, port: int | None = None, version: str = APICURIO_VERSION, heap: str = "384m") -> None:
        self.port = port or free_port()
        self.version = version
        self.heap = heap
        self.log_path = Path(tempfile.mkstemp(prefix="apicurio-", suffix=".log")[1])
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: Watchdog | None = None

    @property
    def url(self) -> str:
        """The Confluent-compatible API, the url to give ``SchemaRegistry``."""
        return f"http://127.0.0.1:{self.port}{CCOMPAT_PATH}"

    def start(self, timeout: float = 120.0) -> RegistryServer:
        """Start the server and return once its API answers; ``SchemaRegistryError`` if it does not in time."""
        jar = ensure_server(self.version)
        command = [find_java(), f"-Xmx{self.heap}", "-XX:+ExitOnOutOfMemoryError", "-XX:TieredStopAtLevel=1",
                   "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={self.port}",
                   "-Dquarkus.log.level=WARN", "-jar", str(jar)]
        self._watchdog = Watchdog()
        with open(self.log_path, "ab") as out:
            self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True, cwd=jar.parent)
        self._watchdog.guard(self._process.pid)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None:
                self.stop()
                raise SchemaRegistryError(f"Apicurio Registry exited with {self._process.returncode} while starting:"
                                          f"\n{tail(self.log_path)}")
            if time.monotonic() > deadline:
                self.stop()
                raise SchemaRegistryError(f"Apicurio Registry did not answer at {self.url} within {timeout:.0f}s:"
                                          f"\n{tail(self.log_path)}")
            time.sleep(0.2)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/subjects", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if self._watchdog is not None:
                self._watchdog.release(process.pid)
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamer.schema_registry.devserver",
                                     description="Apicurio Registry (Confluent-compatible API) on 127.0.0.1")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="fetch the server into ~/.cache/streamer and exit")
    start = commands.add_parser("start", help="run the server in the foreground until Ctrl-C")
    start.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(ensure_server())
        return 0
    server = RegistryServer(port=args.port).start()
    print(f"schema registry at {server.url} (log {server.log_path}); Ctrl-C stops it", flush=True)
    stopping = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)  # after the JVM started: it must not inherit the mask
    try:
        signal.sigwait(stopping)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
