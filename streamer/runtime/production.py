"""Records the broker would refuse or did refuse: the ``production_error_handler`` policy.

Kafka Streams' ProductionExceptionHandler, shaped by one limit of aiokafka: its idempotent
producer keeps the sequence numbers of a batch the broker refused, so every later batch of
that partition fails too. A refused batch cannot be skipped; it must never be sent. So each
record is checked before it goes into a batch: against its topic's ``max.message.bytes``
(read from the broker once at start-up) and the producer's largest request. The policy
decides for records too large for either, and for batches ``send_batch`` refuses before
queueing them (topic not authorized, or unknown): nothing of those reached the producer's
sequence. Whatever the broker refuses later, in its answer to a sent batch, fails the task.

``fail`` (default) stops the task; ``log_and_continue`` logs and drops the record;
``dead_letter`` also writes it to the dead-letter topic with the error in headers. Records
for internal topics (changelogs, repartition topics) and dead letters are never dropped: a
refused one fails the task, since skipping it would lose state or split a computation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamer.config import StreamerConfig
from streamer.errors import ProduceError, RecordTooLargeError
from streamer.runtime.metrics import WorkerMetrics
from streamer.topology.topology import Topology, internal_topic_name

log = logging.getLogger("streamer.errors")

#: Errors ``send_batch`` raises before the batch is queued (its metadata wait): the producer goes on.
REFUSED_BEFORE_SEND: tuple[type[BaseException], ...] = (
    kafka_errors.TopicAuthorizationFailedError, kafka_errors.UnknownTopicOrPartitionError)
#: Broker answers that a record is too large for its topic.
TOO_LARGE: tuple[type[BaseException], ...] = (kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordTooLargeError)
_TOPIC_AUTHORIZATION_FAILED = 29
#: One produced record: key, value, timestamp, headers.
Produced = tuple[bytes | None, bytes | None, int, list[tuple[str, bytes]]]


@dataclass(frozen=True)
class OutputTopics:
    """What a worker's collectors check records against, read once at start-up."""

    #: topic -> its max.message.bytes, for the topics the topology names as outputs (and the dead letters')
    limits: Mapping[str, int]
    #: changelog and repartition topics: a record refused there fails the task under every policy
    internal: frozenset[str]

    @classmethod
    async def read(cls, admin: AIOKafkaAdminClient, topology: Topology, config: StreamerConfig) -> OutputTopics:
        """Ask the broker for the max.message.bytes of every topic the topology writes to by name."""
        app = config.application_id
        internal = {internal_topic_name(app, spec.suffix) for spec in topology.repartition_topics}
        internal |= {spec.changelog_topic(app) for spec in topology.stores() if spec.logged}
        sinks = {sink.resolved_topic(app) for sub in topology.subtopologies for sink in sub.sinks}
        named = {t for t in sinks if t is not None} | internal | {config.effective_dead_letter_topic}
        return cls(await _max_message_bytes(admin, sorted(named)), frozenset(internal))


async def _max_message_bytes(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> dict[str, int]:
    """max.message.bytes of the existing ones among ``topics`` (the broker's default where not set)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, t, {"max.message.bytes": None}) for t in topics]
    limits: dict[str, int] = {}
    if not resources:
        return limits
    for response in await admin.describe_configs(resources):
        for error_code, _, _, name, entries in response.resources:
            if error_code == _TOPIC_AUTHORIZATION_FAILED:
                log.warning("not authorized to read the configs of topic %s: a record over its max.message.bytes "
                            "will stop the task under every production_error_handler; grant the application's "
                            "principal DESCRIBE_CONFIGS on it", name)
            if error_code == 0:  # a topic that does not exist (the dead letters' when unused) has no limit
                for entry in entries:
                    if entry[0] == "max.message.bytes" and entry[1]:
                        limits[name] = int(entry[1])
    return limits


def refusal_hint(error: BaseException) -> str:
    """What to change after the broker or the producer refused records of a topic."""
    if isinstance(error, TOO_LARGE):
        return (" (a record is larger than the topic's max.message.bytes, lowered since start-up or of a topic "
                "named per record: raise it on the topic, or make the record smaller)")
    if isinstance(error, kafka_errors.TopicAuthorizationFailedError):
        return " (grant the application's principal WRITE and DESCRIBE on the topic)"
    if isinstance(error, (kafka_errors.UnknownTopicOrPartitionError, kafka_errors.KafkaTimeoutError)):
        return " (was the topic deleted? create it again, or check that its partitions have leaders)"
    return ""


class ProductionErrorHandler:
    """The policy for one task's records that the broker would refuse or refused before they were sent."""

    def __init__(self, task_id: str, config: StreamerConfig, outputs: OutputTopics, max_request_size: int,
                 metrics: WorkerMetrics | None = None) -> None:
        self.task_id = task_id
        self.policy = config.production_error_handler
        self.dead_letter_topic = config.effective_dead_letter_topic
        self.internal = outputs.internal
        self.max_request_size = max_request_size
        #: the producers' batch size: a topic that takes less gets smaller batches
        self.batch_bytes = config.max_batch_bytes
        self.metrics = metrics
        self.topic_limits = outputs.limits
        #: topic -> the largest batch (bytes, uncompressed: streamer's producers do not compress) it takes
        self.limits = {topic: min(limit, max_request_size) for topic, limit in outputs.limits.items()}

    def limit(self, topic: str) -> int:
        return self.limits.get(topic, self.max_request_size)

    def too_large(self, topic: str, partition: int, record: Produced, size: int) -> Produced | None:
        """A record of ``size`` bytes (as a batch of its own) that ``topic`` does not take."""
        topic_limit = self.topic_limits.get(topic)
        which = (f"the topic's max.message.bytes ({topic_limit}; raise it with kafka-configs.sh --alter "
                 f"--entity-type topics --entity-name {topic} --add-config max.message.bytes=N, or make the record "
                 "smaller)" if topic_limit is not None and topic_limit < self.max_request_size
                 else f"the producer's max_request_size ({self.max_request_size}; raise max_batch_bytes)")
        error = RecordTooLargeError(f"a record of {size} bytes for {topic}[{partition}] is larger than {which}")
        return self.refused(topic, partition, record, error)

    def refused(self, topic: str, partition: int, record: Produced, error: BaseException) -> Produced | None:
        """Apply the policy to one record; returns the dead letter to send, if the policy says so.

        ``partition`` is -1 for a record whose partition was not chosen yet (its topic's unknown).
        """
        where = f"task {self.task_id}, output {topic}" + (f"[{partition}]" if partition >= 0 else "")
        if self.policy == "fail" or topic in self.internal or topic == self.dead_letter_topic:
            self._count("failed", error)
            why = ("it is an internal topic, whose records are never skipped" if topic in self.internal
                   else "it is the dead-letter topic" if topic == self.dead_letter_topic
                   else "production_error_handler is fail; log_and_continue or dead_letter skip such records")
            raise ProduceError(f"{where}: {error!r}{refusal_hint(error)} ({why})") from error
        log.warning("skipping a record the broker %s (%s): %s", "refuses" if isinstance(error, RecordTooLargeError)
                    else "refused", where, error)
        self._count("dead_lettered" if self.policy == "dead_letter" else "skipped", error)
        if self.policy != "dead_letter":
            return None
        key, value, timestamp, headers = record
        return key, value, timestamp, list(headers) + [
            ("streamer.error.class", type(error).__name__.encode()),
            ("streamer.error.message", str(error).encode(errors="replace")[:4096]),
            ("streamer.production.topic", topic.encode()),
            ("streamer.production.partition", str(partition).encode()),
        ]

    def _count(self, outcome: str, error: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.production_error(outcome, error)

    @staticmethod
    def without_value(letter: Produced) -> Produced:
        """The dead letter of a record too large for the dead-letter topic too: its key and headers, no value."""
        key, value, timestamp, headers = letter
        return key, None, timestamp, headers + [("streamer.error.value_dropped", str(len(value or b"")).encode())]
