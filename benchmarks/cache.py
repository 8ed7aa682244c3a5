"""Where the harness keeps what it builds once and reuses: peer virtualenvs and the Java app.

Everything lives under streamer's cache (``$STREAMER_CACHE_DIR`` or ``~/.cache/streamer``),
outside the work tree, so the peers' pins never touch the project's venv and builds never
dirty the repository. Each item is guarded by a file lock (two harnesses may start at once)
and marked complete only after it is usable, so an interrupted install is redone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from streamer.devbroker.jars import cache_dir, file_lock

INSTALL_TIMEOUT_S = 1200.0
_READY = ".bench-ready"


class Unavailable(Exception):
    """A contender cannot be installed or built here; the message says why."""


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                timeout=INSTALL_TIMEOUT_S, check=False)
    except FileNotFoundError as error:
        raise Unavailable(f"{what}: {error.filename} not found") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{what}: no result after {INSTALL_TIMEOUT_S:.0f}s") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise Unavailable(f"{what} failed (exit {result.returncode}):\n{tail}")


def ensure_venv(name: str, requirements: list[str]) -> Path:
    """The python of a virtualenv named ``name`` holding exactly ``requirements`` (created on demand)."""
    home = cache_dir() / "bench-venvs" / name
    python = home / "bin" / "python"
    wanted = "\n".join(requirements) + "\n"
    ready = home / _READY
    if ready.is_file() and ready.read_text() == wanted and python.exists():
        return python
    with file_lock(home.parent / f".{name}.lock"):
        if ready.is_file() and ready.read_text() == wanted and python.exists():
            return python
        shutil.rmtree(home, ignore_errors=True)
        # The base interpreter, not ours: a venv made from inside a venv would still be fine,
        # but this keeps the peers independent of .venv's lifetime.
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", str(home)], f"creating the {name} virtualenv")
        _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
             f"pip install {' '.join(requirements)}")
        ready.write_text(wanted)
    return python


def tree_digest(root: Path) -> str:
    """A short digest of every file under ``root`` (paths and contents), for build caching."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "target" not in p.relative_to(root).parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def ensure_maven_build(source: Path, name: str, properties: dict[str, str]) -> Path:
    """Build the Maven project at ``source`` in a cached copy; returns the copy's ``target/``.

    The build runs in a copy keyed by the sources and ``properties`` so that nothing is
    written into the work tree and a changed source or version rebuilds.
    """
    key = tree_digest(source) + "-" + "-".join(f"{k}={v}" for k, v in sorted(properties.items()))
    home = cache_dir() / "bench-build" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    ready = home / _READY
    if ready.is_file():
        return home / "target"
    if shutil.which("mvn") is None:
        raise Unavailable("Maven ('mvn') is not on PATH")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise Unavailable("no JDK: 'java' is not on PATH and JAVA_HOME is unset")
    with file_lock(home.parent / f".{name}.lock"):
        if ready.is_file():
            return home / "target"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(source, home, ignore=shutil.ignore_patterns("target"))
        defines = [f"-D{k}={v}" for k, v in properties.items()]
        _run(["mvn", "-q", "-B", "-Dstyle.color=never", "-DskipTests", *defines, "package"],
             f"mvn package ({name})", cwd=home)
        ready.write_text(key + "\n")
    return home / "target"
