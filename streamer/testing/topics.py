"""In-memory topics: what the driver's tasks write, in place of a broker.

Every message written to any topic (inputs, outputs, repartition, changelog and
dead-letter topics) is appended to that topic's log as bytes, exactly as a producer
would send it. Internal topics are read back from the same logs by the tasks that
consume them, and the user's reads deserialize from them.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

from streamer.errors import ProduceError, SerializationError
from streamer.partitioner import default_partition
from streamer.record import Headers


class Message(NamedTuple):
    """One message of a topic, with the fields a Source and the error handler read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: Headers | None


class TopicLogs:
    """Append-only message lists per topic; offsets count per (topic, partition) as in Kafka."""

    def __init__(self, partition_counts: dict[str, int]) -> None:
        self.partition_counts = partition_counts
        self._logs: dict[str, list[Message]] = {}
        self._next_offset: dict[tuple[str, int], int] = {}

    def partition_count(self, topic: str) -> int:
        """Partitions of a topic: as configured for the driver, else one."""
        return self.partition_counts.get(topic, 1)

    def append(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
               headers: Headers | None, partition: int | None) -> Message:
        """Write one message; ``partition`` None means Kafka's default placement by key."""
        require_bytes(topic, "key", key)
        require_bytes(topic, "value", value)
        count = self.partition_count(topic)
        if partition is None:
            partition = 0 if key is None else default_partition(key, count)
        elif not 0 <= partition < count:
            raise ProduceError(
                f"a record for {topic} was sent to partition {partition}, but the topic has {count} "
                f"partition(s); check the partitioner (the driver's `partitions` argument sets counts)"
            )
        slot = (topic, partition)
        offset = self._next_offset.get(slot, 0)
        self._next_offset[slot] = offset + 1
        message = Message(topic, partition, offset, key, value, timestamp, list(headers) if headers else None)
        self._logs.setdefault(topic, []).append(message)
        return message

    def messages(self, topic: str) -> list[Message]:
        return self._logs.get(topic, [])

    def topics(self) -> list[str]:
        return sorted(t for t, log in self._logs.items() if log)

    def mark(self) -> dict[str, int]:
        """The length of every log now, to roll back to if processing fails."""
        return {topic: len(log) for topic, log in self._logs.items()}

    def rollback(self, mark: dict[str, int]) -> None:
        """Forget what was written since ``mark``: a failed record's output never becomes visible."""
        for topic, log in self._logs.items():
            keep = mark.get(topic, 0)
            for message in log[keep:]:
                slot = (topic, message.partition)
                self._next_offset[slot] = min(self._next_offset[slot], message.offset)
            del log[keep:]


#: What a sink-side record without bytes most likely lacks.
SINK_SERDE_HINT = "nothing serialized it (the default serde is bytes); pass {what}_serde= where the stream is " \
    "written (to, group_by, repartition)"


def require_bytes(topic: str, what: str, data: Any, hint: str = SINK_SERDE_HINT) -> None:
    """A producer only sends bytes; say which serde is missing instead of failing deep inside."""
    if data is not None and not isinstance(data, (bytes, bytearray)):
        raise SerializationError(
            f"a record for topic {topic!r} has a {type(data).__name__} {what}, not bytes: " + hint.format(what=what)
        )


class DriverCollector:
    """A task's output in the driver: the RecordCollector's interface, written straight to the logs.

    ``written`` keeps the last offset per (topic, partition) since it was last cleared,
    which is what the runtime's flush reports for changelog bookkeeping.
    """

    def __init__(self, logs: TopicLogs) -> None:
        self.logs = logs
        self.written: dict[tuple[str, int], int] = {}

    def send(self, topic: str, keys: list[bytes | None], values: list[bytes | None], timestamps: list[int],
             headers: list[Any], partitions: list[int] | None = None) -> None:
        """Write serialized records given as parallel lists; ``partitions`` None: default placement."""
        chosen: Iterable[int | None] = partitions if partitions is not None else [None] * len(keys)
        for key, value, timestamp, header, partition in zip(keys, values, timestamps, headers, chosen):
            message = self.logs.append(topic, key, value, timestamp, header, partition)
            self.written[(topic, message.partition)] = message.offset

    def partition_count(self, topic: str) -> int:
        return self.logs.partition_count(topic)

    def take_written(self) -> dict[tuple[str, int], Any]:
        written, self.written = self.written, {}
        return written
