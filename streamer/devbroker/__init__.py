"""streamer's own real Apache Kafka for development, tests, demos and CI.

    from streamer.devbroker import DevBroker
    with DevBroker() as broker:          # single KRaft node on 127.0.0.1, temp data dir
        use(broker.bootstrap_servers)

The official broker jars are fetched once from Maven Central (see ``ensure_jars``).
"""

from streamer.devbroker.broker import DevBroker
from streamer.devbroker.errors import BrokerStartError, DevBrokerError, JarFetchError, JavaNotFoundError
from streamer.devbroker.jars import KAFKA_VERSION, cache_dir, ensure_jars

__all__ = [
    "KAFKA_VERSION",
    "BrokerStartError",
    "DevBroker",
    "DevBrokerError",
    "JarFetchError",
    "JavaNotFoundError",
    "cache_dir",
    "ensure_jars",
]
