"""The CLI's record of the background dev broker: which process runs it and where it listens."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from streamer.devbroker.jars import cache_dir


@dataclass(frozen=True)
class BrokerState:
    """What ``start`` leaves behind for ``status`` and ``stop``."""

    pid: int
    bootstrap_servers: str
    nodes: int
    version: str
    data_dir: str
    log: str
    security_protocol: str = "PLAINTEXT"
    #: Where set-up tools reach a secured broker without TLS or SASL ("" when not secured).
    plaintext_bootstrap_servers: str = ""
    #: The streamer settings of a client (bootstrap, protocol, certificate files, user).
    client_settings: dict[str, str] = field(default_factory=dict)


def state_path() -> Path:
    return cache_dir() / "devbroker.json"


def supervisor_log_path() -> Path:
    return cache_dir() / "devbroker.log"


def write_state(state: BrokerState) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(state), indent=2) + "\n")
    temporary.replace(path)  # readers never see half a file


def read_state() -> BrokerState | None:
    """The recorded broker, or None if there is none or its supervisor process is gone."""
    try:
        raw = json.loads(state_path().read_text())
        state = BrokerState(**raw)
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None
    return state if is_supervisor(state.pid) else None


def clear_state(pid: int | None = None) -> None:
    """Remove the state file (only if it is ``pid``'s, when given)."""
    path = state_path()
    if pid is not None:
        try:
            if json.loads(path.read_text()).get("pid") != pid:
                return
        except (FileNotFoundError, json.JSONDecodeError):
            return
    path.unlink(missing_ok=True)


def is_supervisor(pid: int) -> bool:
    """True when ``pid`` is alive and is a dev broker CLI process (not a recycled pid)."""
    if not Path("/proc/self").exists():  # no procfs (macOS): trust the pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return b"streamer.devbroker" in cmdline or b"dev-broker" in cmdline
