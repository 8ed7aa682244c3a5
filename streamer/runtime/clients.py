"""Connection settings shared by every aiokafka client a worker creates."""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from streamer.config import StreamerConfig

#: Certificate files given in the config, turned into the ``ssl_context`` aiokafka expects.
_SSL_FILES = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password")


def connection_options(config: StreamerConfig) -> dict[str, Any]:
    """bootstrap_servers plus the configured client options (security, SASL, SSL)."""
    options = dict(config.client_options)
    files = {name[len("ssl_"):]: options.pop(name) for name in _SSL_FILES if name in options}
    if files and "ssl_context" not in options:
        options["ssl_context"] = create_ssl_context(**files)
    return {"bootstrap_servers": config.bootstrap_servers, **options}
