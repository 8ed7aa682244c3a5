"""Certificates for the dev broker's TLS listener, made with Python's ``cryptography`` package.

A private CA signs one broker certificate (for ``127.0.0.1`` and ``localhost``) and one client
certificate. Everything is PEM: the broker reads its key and chain as ``ssl.keystore.type=PEM``
and the CA as ``ssl.truststore.type=PEM``; Python clients take the same files as
``ssl_cafile``, ``ssl_certfile`` and ``ssl_keyfile``. The files are kept in a directory and
reused while they are valid, so a kept data dir keeps its certificates across restarts.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.devbroker.config import HOST
from streamer.devbroker.errors import DevBrokerError

#: How long new certificates are valid; they are made again once less than a day is left.
VALID_DAYS = 365
_RENEW_BEFORE = datetime.timedelta(days=1)


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of one dev broker's certificates."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """The CA certificate: what clients trust (``ssl_cafile``) and the broker checks clients against."""
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def broker_keystore(self) -> Path:
        """The broker's private key and certificate chain in one file (``ssl.keystore.type=PEM``)."""
        return self.directory / "broker.pem"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client-key.pem"

    def all(self) -> tuple[Path, ...]:
        return self.ca_cert, self.ca_key, self.broker_keystore, self.client_cert, self.client_key


def ensure_tls_files(directory: Path) -> TlsFiles:
    """The certificates in ``directory``, made first if missing or about to expire."""
    files = TlsFiles(directory)
    if all(path.is_file() for path in files.all()) and _valid_long_enough(files.broker_keystore):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = make_ca(files.ca_cert, files.ca_key, "streamer dev broker CA")
    broker_key, broker_cert = _issue(ca_key, ca_cert, "localhost", server=True)
    client_key, client_cert = _issue(ca_key, ca_cert, "streamer-client", server=False)
    _write(files.broker_keystore, _key_pem(broker_key) + _cert_pem(broker_cert) + _cert_pem(ca_cert))
    _write(files.client_key, _key_pem(client_key))
    _write(files.client_cert, _cert_pem(client_cert))
    return files


def make_ca(cert_path: Path, key_path: Path, name: str) -> tuple[Any, Any]:
    """A self-signed CA written to ``cert_path`` and ``key_path``; returns (key, certificate).

    Tests use a second one to play a CA the broker's certificate does not come from.
    """
    x509, modules = _cryptography()
    hashes, ec = modules["hashes"], modules["ec"]
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    _write(key_path, _key_pem(key))
    _write(cert_path, _cert_pem(cert))
    return key, cert


def _issue(ca_key: Any, ca_cert: Any, common_name: str, *, server: bool) -> tuple[Any, Any]:
    x509, modules = _cryptography()
    hashes, ec = modules["hashes"], modules["ec"]
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _valid_long_enough(path: Path) -> bool:
    x509, _ = _cryptography()
    try:
        cert = x509.load_pem_x509_certificates(path.read_bytes())[0]
    except ValueError:
        return False
    return bool(cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > _RENEW_BEFORE)


def _key_pem(key: Any) -> bytes:
    _, modules = _cryptography()
    serialization = modules["serialization"]
    data: bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return data


def _cert_pem(cert: Any) -> bytes:
    _, modules = _cryptography()
    data: bytes = cert.public_bytes(modules["serialization"].Encoding.PEM)
    return data


def _write(path: Path, data: bytes) -> None:
    """Write a key or certificate readable by this user only (keys are not encrypted)."""
    temporary = path.with_suffix(".tmp")
    temporary.touch(mode=0o600)
    temporary.write_bytes(data)
    temporary.replace(path)


def _cryptography() -> tuple[Any, dict[str, Any]]:
    """The ``cryptography`` modules, imported on first use: only a TLS dev broker needs them."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        raise DevBrokerError("a TLS dev broker makes its certificates with the 'cryptography' package: "
                             "pip install cryptography (it comes with streamer's test extra)") from None
    return x509, {"hashes": hashes, "serialization": serialization, "ec": ec}
