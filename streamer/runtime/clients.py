"""Connection settings shared by every aiokafka client a worker creates, and why a connection failed.

The security settings (``security_protocol``, ``ssl_*``, ``sasl_*``) become aiokafka options
here, for the admin client, the consumers (group, restore, global) and the producers alike;
``client_options`` is passed on as it is for everything else.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.errors import (
    KafkaError,
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from streamer.config import StreamerConfig
from streamer.errors import BrokerAuthenticationError, ConfigError

#: Certificate files given in client_options (the older way), turned into the ``ssl_context`` aiokafka expects.
_SSL_FILES = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password")
#: Longest a start-up diagnosis waits for one broker.
_DIAGNOSIS_TIMEOUT_S = 10.0
#: The first byte of a TLS record (alert, handshake ...): what a plain-text client reads as a huge length.
_TLS_RECORD_TYPES = frozenset({0x14, 0x15, 0x16, 0x17})
#: Fetch sizes of the restore and global consumers: a restore reads far ahead, unlike the group consumer.
_READ_AHEAD_PARTITION_BYTES = 8 * 1_048_576
_READ_AHEAD_BYTES = 32 * 1_048_576
_SslKey = tuple[str | None, str | None, str | None, str | None, tuple[int, ...]]
_contexts: dict[_SslKey, ssl.SSLContext] = {}


def connection_options(config: StreamerConfig) -> dict[str, Any]:
    """bootstrap_servers, the security settings as aiokafka options, and the configured client options."""
    options = dict(config.client_options)
    unknown = sorted(set(options) - set(_SSL_FILES) - _shared_client_options())
    if unknown:
        raise ConfigError(
            f"client_options {', '.join(unknown)}: not an option that aiokafka's consumer, producer and admin client "
            f"all take, and client_options reach each of them; they take {', '.join(sorted(_shared_client_options()))}"
        )
    files = {name[len("ssl_"):]: options.pop(name) for name in _SSL_FILES if name in options}
    if files and "ssl_context" not in options:
        options["ssl_context"] = ssl_context(**files)
    options.update(_security_options(config))
    return {"bootstrap_servers": config.bootstrap_servers, **options}


@functools.cache
def _shared_client_options() -> frozenset[str]:
    """The keyword arguments every kind of aiokafka client a worker opens accepts (read from their signatures)."""
    kinds = (AIOKafkaConsumer, AIOKafkaProducer, AIOKafkaAdminClient)
    shared = frozenset.intersection(*(frozenset(inspect.signature(kind.__init__).parameters) for kind in kinds))
    return shared - {"self", "loop", "client_id", "bootstrap_servers"}


def changelog_consumer(config: StreamerConfig, purpose: str, *, read_ahead: bool,
                       auto_offset_reset: str = "earliest") -> AIOKafkaConsumer:
    """A consumer outside the group that reads state topics from where the caller seeks (restore, standby, global).

    It commits nothing (the stores keep their offsets) and, under exactly-once, reads only
    committed records, so no store ever holds what an aborted transaction wrote. ``read_ahead``
    fetches far larger batches, for a global store that reads its whole topic at once (a task's
    restore fetches through this consumer's client with its own requests, see changelog_fetch).
    ``auto_offset_reset="none"`` makes a fetch past the log start raise OffsetOutOfRangeError
    instead of moving on from the start unnoticed (a standby must wipe its store then).
    """
    sizes = {"max_partition_fetch_bytes": _READ_AHEAD_PARTITION_BYTES, "fetch_max_bytes": _READ_AHEAD_BYTES}
    return AIOKafkaConsumer(
        client_id=f"{config.application_id}-{purpose}",
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        isolation_level="read_committed" if config.exactly_once else "read_uncommitted",
        **(sizes if read_ahead else {}),
        **connection_options(config),
    )


def _security_options(config: StreamerConfig) -> dict[str, Any]:
    protocol = config.security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(config.ssl_cafile, config.ssl_certfile, config.ssl_keyfile,
                                             config.ssl_password)
    if protocol.startswith("SASL_"):
        options |= {"sasl_mechanism": config.sasl_mechanism, "sasl_plain_username": config.sasl_username,
                    "sasl_plain_password": config.sasl_password}
    return options


def ssl_context(cafile: str | None = None, certfile: str | None = None, keyfile: str | None = None,
                password: str | None = None) -> ssl.SSLContext:
    """A client TLS context that checks the broker's certificate and host name (127.0.0.1 needs an IP SAN).

    One context per set of files (as long as they are unchanged) serves every client: a worker
    under exactly-once has a producer per task.
    """
    key = (cafile, certfile, keyfile, password, tuple(_mtime(path) for path in (cafile, certfile, keyfile)))
    context = _contexts.get(key)
    if context is None:
        context = _contexts[key] = _new_ssl_context(cafile, certfile, keyfile, password)
    return context


def _mtime(path: str | None) -> int:
    try:
        return os.stat(path).st_mtime_ns if path else 0
    except OSError:
        return -1


def _new_ssl_context(cafile: str | None, certfile: str | None, keyfile: str | None,
                     password: str | None) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"ssl_cafile {cafile}: cannot load it as PEM CA certificates "
                          f"({getattr(error, 'strerror', None) or error}); give the CA certificate file") from None
    if certfile is not None:
        try:
            context.load_cert_chain(certfile, keyfile, password)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"ssl_certfile {certfile} / ssl_keyfile {keyfile}: cannot load the client certificate "
                              f"and key ({getattr(error, 'strerror', None) or error}); check the files and "
                              f"ssl_password") from None
    return context


async def security_failure(config: StreamerConfig) -> BrokerAuthenticationError | None:
    """Why the clients cannot talk to a broker that accepts connections, or None if that is not the problem.

    aiokafka only logs a failed handshake and then says it could not bootstrap; this opens one
    connection per bootstrap server with the configured security to find out what failed
    (an untrusted certificate, a wrong password, another protocol than the listener's) and
    what to change, bounded by ``broker_timeout_s``.
    """
    options = connection_options(config)
    timeout = min(config.broker_timeout_s, _DIAGNOSIS_TIMEOUT_S)
    for server in str(options.pop("bootstrap_servers")).split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            continue
        failure = await _diagnose(config, host, int(port), options, timeout)
        if failure is not None:
            return failure
    return None


async def _diagnose(config: StreamerConfig, host: str, port: int, options: dict[str, Any],
                    timeout: float) -> BrokerAuthenticationError | None:
    where = f"{host}:{port}"
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return None  # nothing listens there: not a security problem
    writer.close()
    protocol = str(options.get("security_protocol", "PLAINTEXT"))
    keys = ("ssl_context", "security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password")
    conn = None
    try:
        conn = await asyncio.wait_for(create_conn(host, port, client_id=f"{config.application_id}-check",
                                                  request_timeout_ms=int(timeout * 1000),
                                                  **{k: options[k] for k in keys if k in options}), timeout)
        # A listener that wants SASL answers ApiVersions to anyone, then drops what comes unauthenticated.
        await asyncio.wait_for(conn.send(MetadataRequest([])), timeout)
    except ssl.SSLCertVerificationError as error:
        signed = f" (ssl_cafile {config.ssl_cafile} did not sign it)" if config.ssl_cafile else ""
        return BrokerAuthenticationError(f"the TLS certificate of the broker at {where} is not trusted "
                                         f"({error.verify_message}){signed}: set ssl_cafile to the CA certificate "
                                         f"that signed it")
    except SaslAuthenticationFailed as error:
        return BrokerAuthenticationError(f"SASL {options.get('sasl_mechanism')} authentication as "
                                         f"{options.get('sasl_plain_username')!r} failed at {where} ({error}): "
                                         f"check sasl_username and sasl_password")
    except UnsupportedSaslMechanismError as error:
        return BrokerAuthenticationError(f"{error} (at {where}): set sasl_mechanism to one of them")
    except IllegalSaslStateError:
        return BrokerAuthenticationError(f"the listener at {where} does not take SASL: set security_protocol to "
                                         f"PLAINTEXT or SSL, or use its SASL listener")
    except (KafkaError, OSError, asyncio.IncompleteReadError, TimeoutError) as error:
        return _refused(error, where, protocol, config)
    finally:
        if conn is not None:
            conn.close()
    return None


def _refused(error: BaseException, where: str, protocol: str, config: StreamerConfig) -> BrokerAuthenticationError:
    """The broker ended the connection during the handshake or the first request: say what it wanted."""
    cause = error.__cause__ or error
    if isinstance(cause, ssl.SSLError):
        reason = str(cause.reason or cause)
        if "CERTIFICATE" in reason.upper():
            fix = ("use a client certificate signed by a CA the broker trusts" if config.ssl_certfile
                   else "set ssl_certfile and ssl_keyfile")
            return BrokerAuthenticationError(f"the broker at {where} refused the TLS connection ({reason}): "
                                             f"it wants a client certificate: {fix}")
        return BrokerAuthenticationError(f"TLS with the broker at {where} failed ({reason}): is that listener TLS? "
                                         f"check security_protocol ({protocol})")
    if isinstance(cause, asyncio.IncompleteReadError) and cause.expected is not None \
            and cause.expected >> 24 in _TLS_RECORD_TYPES:
        return BrokerAuthenticationError(f"the listener at {where} speaks TLS and security_protocol is {protocol}: "
                                         f"set it to SSL (or SASL_SSL) and ssl_cafile")
    wanted = "SASL" if protocol in ("PLAINTEXT", "SSL") else "another security protocol"
    return BrokerAuthenticationError(f"the broker at {where} accepts connections but ended the first request "
                                     f"({type(cause).__name__}) with security_protocol {protocol}: its listener "
                                     f"wants {wanted}; check security_protocol")


async def raise_security_failure(config: StreamerConfig) -> None:
    """Raise ``security_failure``'s error if there is one (start-up calls it when the clients cannot connect)."""
    failure = await security_failure(config)
    if failure is not None:
        raise failure from None
