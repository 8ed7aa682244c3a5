"""TLS and SASL on the dev broker's client listener.

A secured dev broker has two listeners a client can use: ``CLIENT`` (``bootstrap_servers``),
secured with the chosen protocol, and ``INTERNAL``, plain text, which the nodes use between
themselves and which tests and tools use for set-up (``plaintext_bootstrap_servers``). Both
are on 127.0.0.1 only.

SASL enables PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for the same users: PLAIN users live in
the listener's JAAS configuration (``server.properties``, read at every start), SCRAM
credentials in the cluster metadata, written when the storage is formatted
(``kafka-storage format --add-scram``): a kept data dir keeps the users it was formatted with.

``super_users`` turns on ACLs (KRaft's StandardAuthorizer): those users may do anything, every
other user only what an ACL allows. The plain-text listeners' principal (``ANONYMOUS``, the
nodes themselves and set-up) is a super user too, or the nodes could not talk to each other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from streamer.devbroker.errors import DevBrokerError
from streamer.devbroker.tls import TlsFiles

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
PROTOCOLS: tuple[SecurityProtocol, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SASL_MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS)
#: The user a SASL dev broker has when none are given.
DEFAULT_USERS = {"streamer": "streamer-secret"}
CLIENT_LISTENER = "CLIENT"
INTERNAL_LISTENER = "INTERNAL"
# Names and passwords go into a JAAS line and into --add-scram's bracket syntax unquoted.
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_PASSWORD = re.compile(r"[A-Za-z0-9_.:@+/=-]+")


def uses_tls(protocol: str) -> bool:
    return protocol in ("SSL", "SASL_SSL")


def uses_sasl(protocol: str) -> bool:
    return protocol.startswith("SASL_")


@dataclass(frozen=True)
class Security:
    """How the client listener is secured: protocol, SASL users, and (for TLS) the certificate files."""

    protocol: SecurityProtocol = "PLAINTEXT"
    users: Mapping[str, str] = field(default_factory=dict)
    tls: TlsFiles | None = None
    #: users allowed everything once ACLs are on; empty: no authorizer, every user may do anything
    super_users: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise DevBrokerError(f"security protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if uses_tls(self.protocol) and self.tls is None:
            raise DevBrokerError(f"{self.protocol} needs certificates (TlsFiles)")
        if uses_sasl(self.protocol) and not self.users:
            raise DevBrokerError(f"{self.protocol} needs at least one user")
        for name, password in self.users.items():
            if not _NAME.fullmatch(name) or not _PASSWORD.fullmatch(password):
                raise DevBrokerError(f"dev broker user {name!r}: names may use letters, digits and _.-, passwords "
                                     f"also :@+/= (no spaces, quotes or commas)")
        unknown = [name for name in self.super_users if name not in self.users]
        if self.super_users and not uses_sasl(self.protocol):
            raise DevBrokerError("super users (ACLs) need SASL users: security_protocol SASL_PLAINTEXT or SASL_SSL")
        if unknown:
            raise DevBrokerError(f"super user(s) {', '.join(unknown)} are not users of the dev broker "
                                 f"({', '.join(self.users)})")

    @property
    def secured(self) -> bool:
        return self.protocol != "PLAINTEXT"

    def listener_properties(self) -> dict[str, str]:
        """The ``listener.name.client.*`` settings of the client listener."""
        prefix = f"listener.name.{CLIENT_LISTENER.lower()}."
        settings: dict[str, str] = {}
        if self.tls is not None and uses_tls(self.protocol):
            settings |= {
                prefix + "ssl.keystore.type": "PEM",
                prefix + "ssl.keystore.location": str(self.tls.broker_keystore),
                prefix + "ssl.truststore.type": "PEM",
                prefix + "ssl.truststore.location": str(self.tls.ca_cert),
                # Plain TLS authenticates the client by its certificate; SASL_SSL by its password.
                prefix + "ssl.client.auth": "required" if self.protocol == "SSL" else "none",
            }
        if uses_sasl(self.protocol):
            plain_users = " ".join(f'user_{name}="{password}"' for name, password in self.users.items())
            settings[prefix + "sasl.enabled.mechanisms"] = ",".join(SASL_MECHANISMS)
            settings[prefix + "plain.sasl.jaas.config"] = (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};")
            for mechanism in SCRAM_MECHANISMS:
                settings[prefix + f"{mechanism.lower()}.sasl.jaas.config"] = (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;")
        if self.super_users:
            settings["authorizer.class.name"] = AUTHORIZER
            settings["super.users"] = ";".join(f"User:{name}" for name in ("ANONYMOUS", *self.super_users))
        return settings

    def format_arguments(self) -> list[str]:
        """``--add-scram`` arguments for the storage tool: every user under every SCRAM mechanism."""
        if not uses_sasl(self.protocol):
            return []
        return [argument for name, password in self.users.items() for mechanism in SCRAM_MECHANISMS
                for argument in ("--add-scram", f"{mechanism}=[name={name},password={password}]")]

    def client_settings(self, user: str | None = None, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """streamer settings (``StreamerConfig`` fields) of a client of this listener, as ``user``."""
        settings: dict[str, str] = {"security_protocol": self.protocol}
        if self.tls is not None and uses_tls(self.protocol):
            settings["ssl_cafile"] = str(self.tls.ca_cert)
            if self.protocol == "SSL":
                settings |= {"ssl_certfile": str(self.tls.client_cert), "ssl_keyfile": str(self.tls.client_key)}
        if uses_sasl(self.protocol):
            if mechanism not in SASL_MECHANISMS:
                raise DevBrokerError(f"the dev broker offers {', '.join(SASL_MECHANISMS)}, not {mechanism!r}")
            name = user or next(iter(self.users))
            if name not in self.users:
                raise DevBrokerError(f"the dev broker has no user {name!r}; it has {', '.join(self.users)}")
            settings |= {"sasl_mechanism": mechanism, "sasl_username": name, "sasl_password": self.users[name]}
        return settings
