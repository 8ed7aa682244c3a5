"""What happens to a record that cannot be deserialized or makes user code raise.

``fail`` stops the worker (nothing after the last commit is committed), ``log_and_continue``
logs and skips the record, ``dead_letter`` also writes the original input message to a
dead-letter topic with the error in its headers, so nothing is lost.

Failures of streamer's own machinery (a store that cannot be read or written, a serde that
cannot write what a processor produced, offsets, fencing: every ``StreamerError`` but a
``DeserializationError``) are never user processing errors: ``handle`` re-raises them under
every policy, so the task fails loudly instead of skipping records.

Records a processor drops on purpose (a late record for a closed window) are no
errors: they are logged at a bounded rate, and dead-lettered with the reason in their
headers when the processing policy is ``dead_letter``.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Callable


from streamer.errors import DeserializationError, ProcessingError, StreamerError

log = logging.getLogger("streamer.errors")

#: ``send(topic, keys, values, timestamps, headers)``, the task collector's columnar send.
Send = Callable[[str, list[Any], list[Any], list[int], list[Any]], None]
#: At most one log line per processor this often about the records it drops.
DROP_LOG_INTERVAL_S = 10.0


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
        #: processor -> (when its drops were last logged, drops since then)
        self._drop_log: dict[str, tuple[float, int]] = {}

    def handle(self, processor: str, record: Any, error: BaseException, source: tuple[str, int],
               raw_input: Callable[[int], Any]) -> None:
        topic, partition = source
        where = f"task {self.task_id}, processor {processor}, input {topic}[{partition}]@{record.offset}"
        if is_machinery_failure(error):
            if not getattr(error, "__notes__", None):
                error.add_note(f"raised while processing {where}; no error handler skips streamer's own failures")
            raise error
        is_serde = isinstance(error, DeserializationError)
        policy = self.policies[is_serde]
        if policy == "fail":
            raise ProcessingError(
                f"{where}: {error!r}. Fix the code or data, or set "
                f"{'deserialization' if is_serde else 'processing'}_error_handler to "
                "log_and_continue or dead_letter to skip such records"
            ) from error
        self.skipped += 1
        log.warning("skipping record (%s): %r", where, error)
        if policy == "dead_letter":
            self._dead_letter(record, raw_input, [
                ("streamer.error.class", type(error).__name__.encode()),
                ("streamer.error.message", str(error).encode(errors="replace")[:4096]),
                ("streamer.error.stacktrace", "".join(traceback.format_exception(error)).encode()[-8192:]),
            ] + _location("streamer.error", processor, topic, partition, record.offset))

    def dropped(self, processor: str, record: Any, reason: str, source: tuple[str, int],
                raw_input: Callable[[int], Any]) -> None:
        """A record the processor drops on purpose: log (bounded), dead-letter if that is the policy."""
        topic, partition = source
        now = time.monotonic()
        last, unlogged = self._drop_log.get(processor, (-DROP_LOG_INTERVAL_S, 0))
        if now - last >= DROP_LOG_INTERVAL_S:
            log.warning("task %s, processor %s dropped a record (%s), input %s[%s]@%s%s", self.task_id, processor,
                        reason, topic, partition, record.offset,
                        f"; {unlogged} more dropped since the last such message" if unlogged else "")
            self._drop_log[processor] = (now, 0)
        else:
            self._drop_log[processor] = (last, unlogged + 1)
        if self.policies[False] == "dead_letter":
            self._dead_letter(record, raw_input, [("streamer.dropped.reason", reason.encode(errors="replace")[:4096])]
                              + _location("streamer.dropped", processor, topic, partition, record.offset))

    def _dead_letter(self, record: Any, raw_input: Callable[[int], Any], headers: list[tuple[str, bytes]]) -> None:
        """Write the original input message of ``record`` to the dead-letter topic with extra headers."""
        message = raw_input(record.offset)
        key = getattr(message, "key", None)
        value = getattr(message, "value", None)
        timestamp = getattr(message, "timestamp", record.timestamp)
        self.send(self.dead_letter_topic, [key], [value], [timestamp],
                  [list(getattr(message, "headers", None) or ()) + headers])


def is_machinery_failure(error: BaseException) -> bool:
    """True for streamer's own failures, which no processing policy may skip (see the module docstring)."""
    return isinstance(error, StreamerError) and not isinstance(error, DeserializationError)


def _location(prefix: str, processor: str, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    return [
        (f"{prefix}.processor", processor.encode()),
        (f"{prefix}.topic", topic.encode()),
        (f"{prefix}.partition", str(partition).encode()),
        (f"{prefix}.offset", str(offset).encode()),
    ]
