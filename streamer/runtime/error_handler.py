"""What happens to a record that cannot be deserialized or makes user code raise.

``fail`` stops the worker (nothing after the last commit is committed), ``log_and_continue``
logs and skips the record, ``dead_letter`` also writes the original input message to a
dead-letter topic with the error in its headers, so nothing is lost.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, Callable

from streamer.errors import DeserializationError, ProcessingError

log = logging.getLogger("streamer.errors")

#: ``send(topic, keys, values, timestamps, headers)``, the task collector's columnar send.
Send = Callable[[str, list[Any], list[Any], list[int], list[Any]], None]


class ErrorHandler:
    """Applies the configured policy for one task; ``raw_input`` finds the original message."""

    def __init__(
        self,
        task_id: str,
        deserialization_policy: str,
        processing_policy: str,
        dead_letter_topic: str,
        send: Send,
    ) -> None:
        self.task_id = task_id
        self.policies = {True: deserialization_policy, False: processing_policy}
        self.dead_letter_topic = dead_letter_topic
        self.send = send
        self.skipped = 0

    def handle(self, processor: str, record: Any, error: BaseException, source: tuple[str, int],
               raw_input: Callable[[int], Any]) -> None:
        is_serde = isinstance(error, DeserializationError)
        policy = self.policies[is_serde]
        topic, partition = source
        where = f"task {self.task_id}, processor {processor}, input {topic}[{partition}]@{record.offset}"
        if policy == "fail":
            raise ProcessingError(
                f"{where}: {error!r}. Fix the code or data, or set "
                f"{'deserialization' if is_serde else 'processing'}_error_handler to "
                "log_and_continue or dead_letter to skip such records"
            ) from error
        self.skipped += 1
        log.warning("skipping record (%s): %r", where, error)
        if policy == "dead_letter":
            message = raw_input(record.offset)
            headers = list(getattr(message, "headers", None) or ()) + [
                ("streamer.error.class", type(error).__name__.encode()),
                ("streamer.error.message", str(error).encode(errors="replace")[:4096]),
                ("streamer.error.stacktrace", "".join(traceback.format_exception(error)).encode()[-8192:]),
                ("streamer.error.processor", processor.encode()),
                ("streamer.error.topic", topic.encode()),
                ("streamer.error.partition", str(partition).encode()),
                ("streamer.error.offset", str(record.offset).encode()),
            ]
            key = getattr(message, "key", None)
            value = getattr(message, "value", None)
            timestamp = getattr(message, "timestamp", record.timestamp)
            self.send(self.dead_letter_topic, [key], [value], [timestamp], [headers])
