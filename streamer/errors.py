"""Exception types. Each says what went wrong and what to change."""


class StreamerError(Exception):
    """Base class of every error streamer raises on purpose."""


class TopologyError(StreamerError):
    """The DSL was used in a way that cannot compile (bad name, cycle, unknown store)."""


class ConfigError(StreamerError):
    """A configuration value is missing, malformed or inconsistent."""


class AppLoadError(StreamerError):
    """``module:attr`` could not be imported or is not a topology."""


class MissingTopicError(StreamerError):
    """A topic the topology reads or writes does not exist and auto-creation is off."""


class TopicAuthorizationError(StreamerError):
    """The application's principal may not see a topic the topology reads or writes (Kafka ACLs)."""


class TopicMismatchError(StreamerError):
    """A topic exists but with the wrong partition count or configuration."""


class BrokerUnavailableError(StreamerError):
    """No broker answered at the configured bootstrap servers within the timeout."""


class SerializationError(StreamerError):
    """A serde could not turn bytes into a value or back."""


class DeserializationError(SerializationError):
    """An input message could not be deserialized by its source's serdes."""


class InvalidTimestampError(DeserializationError):
    """An input record has no valid event time (negative, missing or not an int), from Kafka or its extractor."""


class OffsetMetadataError(StreamerError):
    """A task's stream time and processor metadata do not fit the offset commit metadata."""


class ProcessingError(StreamerError):
    """User code raised while processing a record and the handler is set to fail."""


class ProduceError(StreamerError):
    """The broker refused or failed to take records a task produced."""


class TaskFencedError(StreamerError):
    """A newer instance took over a task's transactional id; this instance must let go."""


class StateStoreError(StreamerError):
    """A state store could not be opened, read, written or restored."""


class StoreCorruptedError(StateStoreError):
    """A store's files are damaged or incomplete. The store is only a cache of its changelog, so it is
    deleted and restored from it (when it is opened next) rather than repaired."""


class StoreLockedError(StateStoreError):
    """Another process has the store open: two workers share one state directory."""


class ResetError(StreamerError):
    """An application reset cannot go ahead (its group still has members) or did not finish."""


class SchemaRegistryError(StreamerError):
    """The schema registry did not answer, or refused a request that is not about one record's data.

    Never a record's fault, so no deserialization handler skips it: the task fails, and runs
    again from its last commit once the registry is back.
    """


class BrokerAuthenticationError(StreamerError):
    """A broker accepts connections but TLS or SASL fails: an untrusted certificate, a wrong password,
    or another security protocol than its listener's."""


class QueryError(StreamerError):
    """An interactive query got no answer: no query server at the address, or it refused the query."""


class RecordTooLargeError(ProduceError):
    """A produced record is larger than its topic's max.message.bytes or the producer's largest request:
    the broker would refuse it, so it never goes into a batch (see production_error_handler)."""


class GroupFencedError(TaskFencedError):
    """The consumer group moved to a newer generation without this worker (it was paused or cut off past
    its session timeout): its tasks belong to others now, and it must rejoin before committing again."""


class UnsupportedBrokerError(StreamerError):
    """The broker does not speak a protocol version a setting needs (exactly_once_v2 needs Kafka 2.5 or newer)."""
