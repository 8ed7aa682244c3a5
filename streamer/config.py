"""Worker configuration: defaults, then a TOML file, then STREAMER_* variables, then CLI flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, Mapping

import orjson

from streamer.errors import ConfigError

ProcessingGuarantee = Literal["at_least_once", "exactly_once", "exactly_once_v2"]
ErrorHandling = Literal["fail", "log_and_continue", "dead_letter"]
StoreKind = Literal["rocksdb", "memory"]

ENV_PREFIX = "STREAMER_"
APP_SETTING_PREFIX = "STREAMER_APP_"
_GUARANTEES = ("at_least_once", "exactly_once", "exactly_once_v2")
_HANDLERS = ("fail", "log_and_continue", "dead_letter")
#: Kafka Streams commits every 100 ms under exactly-once: latency downstream is bounded by it.
EXACTLY_ONCE_COMMIT_INTERVAL_MS = 100
AT_LEAST_ONCE_COMMIT_INTERVAL_MS = 5000
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_SSL_SETTINGS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password")
_SASL_SETTINGS = ("sasl_mechanism", "sasl_username", "sasl_password")
#: aiokafka options the security settings make; client_options may give them instead, not as well.
_CLIENT_SECURITY_OPTIONS = frozenset({"security_protocol", "ssl_context", "ssl_cafile", "ssl_certfile", "ssl_keyfile",
                                      "ssl_password", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password"})


@dataclass(frozen=True)
class StreamerConfig:
    """Everything a worker needs; see docs/configuration.md for each setting."""

    application_id: str = ""
    bootstrap_servers: str = "127.0.0.1:9092"
    processing_guarantee: ProcessingGuarantee = "at_least_once"
    #: None: 5000 ms under at-least-once, 100 ms under exactly-once.
    commit_interval_ms: int | None = None
    state_dir: str = "/tmp/streamer-state"
    #: Where stores keep their data: "rocksdb" on disk, or "memory" (rebuilt from the changelog at every start).
    state_store: StoreKind = "rocksdb"
    #: Most records one fetch hands to tasks, and one pass of a task takes from its queue.
    max_poll_records: int = 10_000
    #: Pause a partition's fetching while its task has this many records queued.
    max_buffered_records: int = 50_000
    #: Largest produce batch per partition; larger batches mean fewer requests.
    max_batch_bytes: int = 1_000_000
    #: How long the producer holds a task's output batch before sending it, so that batches of
    #: several partitions go in one request (Kafka's linger.ms); every output waits this long at least.
    linger_ms: int = 5
    #: Commit early when a task's write caches hold this many dirty entries.
    max_dirty_entries: int = 100_000
    #: A task reading several partitions waits this long (wall clock) for an empty partition that
    #: has caught up before processing the others without it; 0 waits only until its lag is known
    #: to be 0, -1 never waits (Kafka Streams' max.task.idle.ms).
    max_task_idle_ms: int = 0
    deserialization_error_handler: ErrorHandling = "fail"
    processing_error_handler: ErrorHandling = "fail"
    #: Topic for dead-letter records; None means "<application_id>-dlq".
    dead_letter_topic: str | None = None
    #: Create missing source topics instead of failing (with this many partitions).
    auto_create_topics: bool = False
    auto_create_partitions: int = 1
    replication_factor: int = 1
    #: How long to wait for a broker to answer before giving up at start-up.
    broker_timeout_s: float = 30.0
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    max_poll_interval_ms: int = 300_000
    log_level: str = "INFO"
    #: Serve /metrics (Prometheus), /health and /ready on this port; None: no endpoint.
    metrics_port: int | None = None
    #: Passed to every aiokafka client: security_protocol, ssl_context, sasl_* ...
    client_options: Mapping[str, Any] = field(default_factory=dict)
    #: Commit a task early when its write caches hold this many bytes of dirty keys and values.
    max_dirty_bytes: int = 16 * 1_048_576
    #: Pause a partition's fetching while its task holds this many bytes of fetched records waiting
    #: (estimated from the sizes of the last fetched records), whichever of this and max_buffered_records
    #: comes first.
    max_buffered_bytes: int = 1_048_576
    #: Most bytes one fetch returns per partition (Kafka's max.partition.fetch.bytes) and in all (fetch.max.bytes).
    max_partition_fetch_bytes: int = 1_048_576
    fetch_max_bytes: int = 8 * 1_048_576
    #: What to do with a record the broker would refuse (larger than its topic's max.message.bytes) or the
    #: producer refused before sending (topic not authorized or unknown): fail, log_and_continue or
    #: dead_letter (ProductionExceptionHandler). What the broker refuses after sending fails the task.
    production_error_handler: ErrorHandling = "fail"
    #: Warm copies of each stateful task kept on other workers, so a failover restores only the tail
    #: (Kafka Streams' num.standby.replicas).
    num_standby_replicas: int = 0
    #: A local copy at most this many changelog records behind counts as caught up: a task moves there at once.
    acceptable_recovery_lag: int = 10_000
    #: Most warm-up copies the group builds at once for tasks waiting to move to a worker that lacks their state.
    max_warmup_replicas: int = 2
    #: After an assignment with warm-ups, rebalance again this much later to move the caught-up tasks.
    probing_rebalance_interval_ms: int = 600_000
    #: Static membership: a stable name per worker (unique in the group); a restart within
    #: session_timeout_ms then causes no rebalance. Set on the group consumer only.
    group_instance_id: str | None = None
    #: The state of a task this worker no longer runs nor keeps as standby is deleted this long after.
    state_cleanup_delay_ms: int = 600_000
    #: How every client connects: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (docs/configuration.md#security).
    security_protocol: str = "PLAINTEXT"
    #: CA certificate file (PEM) that signed the brokers' certificates; None: the system's CAs. SSL, SASL_SSL.
    ssl_cafile: str | None = None
    #: Client certificate (PEM) and its private key, for brokers that authenticate clients by certificate.
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    #: Password of an encrypted ssl_keyfile.
    ssl_password: str | None = None
    #: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with sasl_username and sasl_password. SASL_PLAINTEXT, SASL_SSL.
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    #: "host:port" where this worker serves interactive queries over HTTP (bound there and told to the
    #: other workers through the group); None: no query server.
    application_server: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.client_options, Mapping):
            raise ConfigError(f"client_options must be a table of aiokafka client settings (a JSON object on the "
                              f"command line), not {self.client_options!r}")
        _check_security(self)
        if self.processing_guarantee not in _GUARANTEES:
            raise ConfigError(
                f"processing_guarantee must be one of {_GUARANTEES}, not {self.processing_guarantee!r}"
            )
        if "group_instance_id" in self.client_options:
            raise ConfigError("group_instance_id in client_options would reach the producers and the admin client, "
                              "which reject it; use the group_instance_id setting (--set group_instance_id=NAME)")
        for name in ("num_standby_replicas", "acceptable_recovery_lag", "probing_rebalance_interval_ms",
                     "state_cleanup_delay_ms", "linger_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more, not {getattr(self, name)}")
        if self.max_warmup_replicas < 1:
            raise ConfigError(f"max_warmup_replicas must be 1 or more, not {self.max_warmup_replicas}")
        if self.state_store not in ("rocksdb", "memory"):
            raise ConfigError(f"state_store must be 'rocksdb' or 'memory', not {self.state_store!r}")
        if self.max_task_idle_ms < -1:
            raise ConfigError(f"max_task_idle_ms must be -1 (never wait), 0 or more, not {self.max_task_idle_ms}")
        for name in ("max_dirty_bytes", "max_buffered_bytes", "max_partition_fetch_bytes", "fetch_max_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1 byte, not {getattr(self, name)}")
        for name in ("deserialization_error_handler", "processing_error_handler", "production_error_handler"):
            if getattr(self, name) not in _HANDLERS:
                raise ConfigError(f"{name} must be one of {_HANDLERS}, not {getattr(self, name)!r}")
        if self.application_server is not None:
            split_host_port(self.application_server)
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics_port must be a port from 1 to 65535 (0: any free port), "
                              f"not {self.metrics_port}")

    @property
    def exactly_once(self) -> bool:
        """Either exactly-once design: v2 (a transactional producer per worker) or v1 (one per task)."""
        return self.processing_guarantee in ("exactly_once", "exactly_once_v2")

    @property
    def effective_commit_interval_ms(self) -> int:
        if self.commit_interval_ms is not None:
            return self.commit_interval_ms
        return EXACTLY_ONCE_COMMIT_INTERVAL_MS if self.exactly_once else AT_LEAST_ONCE_COMMIT_INTERVAL_MS

    @property
    def effective_dead_letter_topic(self) -> str:
        return self.dead_letter_topic or f"{self.application_id}-dlq"

    def require_application_id(self) -> None:
        if not self.application_id:
            raise ConfigError(
                "no application id: pass --application-id, set STREAMER_APPLICATION_ID, "
                "or put application_id in the config file"
            )

    def with_overrides(self, overrides: Mapping[str, Any]) -> StreamerConfig:
        return replace(self, **_coerce(overrides))


def split_host_port(endpoint: str) -> tuple[str, int]:
    """``(host, port)`` of an ``application_server`` value such as ``worker-1:8080`` or ``[::1]:8080``."""
    host, sep, port = endpoint.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or (":" in host and not bracketed):
        raise ConfigError(f"application_server must be host:port with a port from 1 to 65535, an IPv6 host in "
                          f"brackets (the address other workers and clients reach this worker's query server at), "
                          f"not {endpoint!r}")
    return host, int(port)


def _check_security(config: StreamerConfig) -> None:
    """The security settings fit together (each error names the setting to change)."""
    protocol = config.security_protocol
    if protocol not in SECURITY_PROTOCOLS:
        raise ConfigError(f"security_protocol must be one of {', '.join(SECURITY_PROTOCOLS)}, not {protocol!r}")
    ssl_set = [name for name in _SSL_SETTINGS if getattr(config, name) is not None]
    if ssl_set and protocol not in ("SSL", "SASL_SSL"):
        raise ConfigError(f"{', '.join(ssl_set)} set but security_protocol is {protocol}: use SSL or SASL_SSL")
    if config.ssl_keyfile is not None and config.ssl_certfile is None:
        raise ConfigError("ssl_keyfile needs ssl_certfile (the client certificate it belongs to)")
    sasl_set = [name for name in _SASL_SETTINGS if getattr(config, name) is not None]
    both = sorted(set(config.client_options) & _CLIENT_SECURITY_OPTIONS)
    if both and (protocol != "PLAINTEXT" or ssl_set or sasl_set):
        raise ConfigError(f"client_options has {', '.join(both)} and the security settings are set too: "
                          f"keep one (the settings: security_protocol, ssl_*, sasl_*)")
    if not protocol.startswith("SASL_"):
        if sasl_set:
            raise ConfigError(f"{', '.join(sasl_set)} set but security_protocol is {protocol}: "
                              f"use SASL_PLAINTEXT or SASL_SSL")
        return
    if config.sasl_mechanism not in SASL_MECHANISMS:
        raise ConfigError(f"security_protocol {protocol} needs sasl_mechanism, one of {', '.join(SASL_MECHANISMS)}, "
                          f"not {config.sasl_mechanism!r} (other mechanisms: client_options)")
    if config.sasl_username is None or config.sasl_password is None:
        raise ConfigError(f"sasl_mechanism {config.sasl_mechanism} needs sasl_username and sasl_password")


def _coerce(values: Mapping[str, Any]) -> dict[str, Any]:
    """Turn strings (from env or flags) into the field's type; unknown names are errors."""
    types = {f.name: f.type for f in fields(StreamerConfig)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in types:
            raise ConfigError(f"unknown setting {name!r}; known settings: {', '.join(sorted(types))}")
        if value is None:
            continue
        kind = str(types[name])
        try:
            if isinstance(value, str) and kind.startswith("int"):
                value = int(value)
            elif isinstance(value, str) and kind.startswith("float"):
                value = float(value)
            elif isinstance(value, str) and kind == "bool":
                value = _boolean(name, value)
            elif isinstance(value, str) and kind.startswith("Mapping"):
                value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise ConfigError(f"setting {name!r} takes a JSON object, e.g. "
                              f"{name}={{\"security_protocol\": \"SSL\"}}; got {value!r}") from None
        except ValueError:
            raise ConfigError(f"setting {name!r} needs a number, got {value!r}") from None
        out[name] = value
    return out


def _boolean(name: str, text: str) -> bool:
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"setting {name!r} takes true or false (also 1/0, yes/no, on/off), got {text!r}")


def from_env(environ: Mapping[str, str]) -> dict[str, str]:
    known = {f.name for f in fields(StreamerConfig)}
    out = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and not key.startswith(APP_SETTING_PREFIX):
            name = key[len(ENV_PREFIX):].lower()
            if name in known:
                out[name] = value
    return out


def from_file(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    settings = dict(data.get("streamer", data))
    app = settings.pop("app", {})
    for key, value in app.items():
        os.environ.setdefault(APP_SETTING_PREFIX + key.upper(), str(value))
    return settings


def load_config(
    file: str | Path | None = None,
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> StreamerConfig:
    """Merge the sources, later ones winning: defaults, file, environment, CLI flags."""
    merged: dict[str, Any] = {}
    if file:
        merged.update(from_file(file))
    merged.update(from_env(os.environ if environ is None else environ))
    merged.update({k: v for k, v in (cli or {}).items() if v is not None})
    return StreamerConfig().with_overrides(merged)


def app_setting(name: str, default: str) -> str:
    """A setting of the user's app (a topic name, say): STREAMER_APP_<NAME> or the default.

    ``streamer run --app-setting name=value`` and the config file's ``[streamer.app]``
    table set these before the app module is imported.
    """
    return os.environ.get(APP_SETTING_PREFIX + name.upper(), default)
