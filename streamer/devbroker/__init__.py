"""streamer's own real Apache Kafka for development, tests, demos and CI.

    from streamer.devbroker import DevBroker
    with DevBroker() as broker:          # single KRaft node on 127.0.0.1, temp data dir
        use(broker.bootstrap_servers)

    with DevBroker(security_protocol="SASL_SSL") as broker:     # TLS and SASL on the client listener
        config = StreamerConfig(application_id="app", **broker.client_settings())

The official broker jars are fetched once from Maven Central (see ``ensure_jars``).
"""

from streamer.devbroker.broker import DevBroker
from streamer.devbroker.errors import BrokerStartError, DevBrokerError, JarFetchError, JavaNotFoundError
from streamer.devbroker.jars import KAFKA_VERSION, cache_dir, ensure_jars
from streamer.devbroker.security import DEFAULT_USERS, SASL_MECHANISMS, SecurityProtocol
from streamer.devbroker.tls import TlsFiles

__all__ = [
    "DEFAULT_USERS",
    "KAFKA_VERSION",
    "SASL_MECHANISMS",
    "BrokerStartError",
    "DevBroker",
    "DevBrokerError",
    "JarFetchError",
    "JavaNotFoundError",
    "SecurityProtocol",
    "TlsFiles",
    "cache_dir",
    "ensure_jars",
]
