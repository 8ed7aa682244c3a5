"""Java processes of the dev broker: the storage formatter, broker nodes, and their watchdog."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path

from streamer.devbroker.config import NodeSpec
from streamer.devbroker.errors import BrokerStartError, JavaNotFoundError

STORAGE_TOOL = "kafka.tools.StorageTool"  # in kafka_2.13 (core) for Kafka 4.x
BROKER_MAIN = "kafka.Kafka"
_FORMAT_TIMEOUT_S = 120.0


def find_java() -> str:
    """The ``java`` to run Kafka with: ``$JAVA_HOME/bin/java`` if set, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise JavaNotFoundError("no 'java' on PATH and JAVA_HOME is not set; Kafka 4 needs a JDK/JRE 17 or newer")
    return found


def log4j_config(directory: Path) -> Path:
    """Copy the packaged log4j2 configuration into ``directory`` (a real file the JVM can read)."""
    target = directory / "log4j2.properties"
    if not target.exists():
        target.write_bytes(resources.files("streamer.devbroker").joinpath("log4j2.properties").read_bytes())
    return target


def _java_command(java: str, libs: Path, heap: str, log4j: Path, main: str, *args: str) -> list[str]:
    return [
        java, f"-Xmx{heap}", "-Xss1m", "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}",
        "-cp", f"{libs}/*", main, *args,
    ]


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def last_error(path: Path) -> str:
    """The last ERROR/FATAL line of a Kafka log and the line after it (often the exception), or ''."""
    lines = tail(path, 400).splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if "] ERROR " in lines[index] or "] FATAL " in lines[index]:
            return "\n".join(lines[index:index + 2])
    return ""


def start_format(java: str, libs: Path, node: NodeSpec, cluster_id: str, log4j: Path,
                 extra: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Start formatting ``node``'s log dir (several nodes can format in parallel); see ``wait_format``.

    ``extra``: more arguments of the format command (``--add-scram ...``).
    """
    command = _java_command(java, libs, "256m", log4j, STORAGE_TOOL, "format", "--ignore-formatted",
                            "-t", cluster_id, "-c", str(node.properties_path), *(extra or []))
    # A quick one-shot JVM: client compiler only, serial GC.
    command[1:1] = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    with open(node.directory / "format.log", "wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def wait_format(process: subprocess.Popen[bytes], node: NodeSpec) -> None:
    """Wait for a format started by ``start_format``; raise with its output if it failed."""
    try:
        code = process.wait(timeout=_FORMAT_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        process.kill()
        process.wait()
        raise BrokerStartError(f"formatting node {node.node_id} took over {_FORMAT_TIMEOUT_S:.0f}s") from error
    if code != 0:
        raise BrokerStartError(f"formatting node {node.node_id} failed (exit {code}):\n"
                               f"{tail(node.directory / 'format.log')}")


class Watchdog:
    """A tiny helper process that stops our JVMs and removes temp dirs if this process dies."""

    def __init__(self) -> None:
        script = Path(__file__).with_name("_watchdog.py")
        self._lock = threading.Lock()
        self._process = subprocess.Popen([sys.executable, "-I", str(script)], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)

    def _send(self, line: str) -> None:
        with self._lock:
            stdin = self._process.stdin
            if stdin is None or stdin.closed:
                return
            try:
                stdin.write((line + "\n").encode())
                stdin.flush()
            except BrokenPipeError:
                pass

    def guard(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def release(self, pgid: int) -> None:
        self._send(f"-{pgid}")

    def remove_later(self, directory: Path) -> None:
        self._send(f"d{directory}")

    def keep(self, directory: Path) -> None:
        self._send(f"u{directory}")

    def close(self) -> None:
        """Let the watchdog exit (call after everything it guards was released)."""
        with self._lock:
            if self._process.stdin is not None and not self._process.stdin.closed:
                try:
                    self._process.stdin.close()
                except BrokenPipeError:
                    pass
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class NodeProcess:
    """One running ``kafka.Kafka`` JVM, in its own process group, logging to ``broker.log``."""

    def __init__(self, java: str, libs: Path, node: NodeSpec, heap: str, log4j: Path, watchdog: Watchdog) -> None:
        self.node = node
        self._watchdog = watchdog
        command = _java_command(java, libs, heap, log4j, BROKER_MAIN, str(node.properties_path))
        command[1:1] = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35"]
        with open(node.log_path, "ab") as out:
            out.write(f"\n==== streamer.devbroker: starting node {node.node_id} at {time.ctime()}\n".encode())
            out.flush()
            self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True,
                                             cwd=node.directory)
        watchdog.guard(self._process.pid)

    @property
    def pid(self) -> int:
        return self._process.pid

    def running(self) -> bool:
        return self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._process.poll()

    def begin_stop(self) -> None:
        """Send SIGTERM without waiting (so several nodes shut down in parallel)."""
        if self.running():
            self._signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it has not exited within ``timeout``."""
        if self.running():
            self._signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._finish()

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        self._signal(signal.SIGKILL)
        self._process.wait()
        self._finish()

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self._process.pid, sig)
        except ProcessLookupError:
            pass

    def _finish(self) -> None:
        self._watchdog.release(self._process.pid)
