"""The time model: event-time extraction, stream time, timestamp-ordered input and its commit metadata.

Everything about time lives here; the runtime and the test driver use it the same way.
"""

from streamer.time.extractors import TimestampExtractor
from streamer.time.partition_group import PartitionGroup
from streamer.time.task_time import TaskTime

__all__ = ["PartitionGroup", "TaskTime", "TimestampExtractor"]
