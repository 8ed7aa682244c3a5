"""JoinWindows: how far apart in event time two records of a stream-stream join may be.

Kafka Streams' ``JoinWindows`` in snake_case. A left record at time t joins right records
with times in ``[t - before, t + after]`` (so a right record at t' joins left records in
``[t' - after, t' + before]``). ``before`` or ``after`` may be negative, which moves the
window off the record's own time, as long as ``before + after >= 0``. A window accepts
out-of-order records until the join's stream time passes its end plus the grace period;
left and outer joins emit a record without a match only then.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamer.errors import TopologyError
from streamer.windows.windows import Duration, millis

#: before and after may be negative; only their sum is bounded.
_ANY = -(2**63)


@dataclass(frozen=True)
class JoinWindows:
    """``before_ms``, ``after_ms`` and ``grace_ms`` of a windowed stream-stream join."""

    before_ms: int
    after_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        if self.before_ms + self.after_ms < 0:
            raise TopologyError(
                f"JoinWindows before_ms + after_ms must not be negative, got before={self.before_ms} ms and "
                f"after={self.after_ms} ms: the window would hold no time. Make before or after larger"
            )
        if self.grace_ms < 0:
            raise TopologyError(f"JoinWindows grace_ms must not be negative, got {self.grace_ms} ms")

    @staticmethod
    def of_time_difference_and_grace(time_difference_ms: Duration, grace_ms: Duration) -> JoinWindows:
        """Records at most ``time_difference_ms`` apart (either way) join; out-of-order records are
        accepted until ``grace_ms`` after a window's end."""
        difference = millis(time_difference_ms, "JoinWindows time_difference_ms")
        return JoinWindows(difference, difference, millis(grace_ms, "JoinWindows grace_ms"))

    @staticmethod
    def of_time_difference_with_no_grace(time_difference_ms: Duration) -> JoinWindows:
        """As ``of_time_difference_and_grace`` with no grace: a window closes at its end."""
        return JoinWindows.of_time_difference_and_grace(time_difference_ms, 0)

    def before(self, time_difference_ms: Duration) -> JoinWindows:
        """How far before a left record a right record may be (default: the time difference)."""
        return JoinWindows(millis(time_difference_ms, "JoinWindows before", minimum=_ANY), self.after_ms,
                           self.grace_ms)

    def after(self, time_difference_ms: Duration) -> JoinWindows:
        """How far after a left record a right record may be (default: the time difference)."""
        return JoinWindows(self.before_ms, millis(time_difference_ms, "JoinWindows after", minimum=_ANY),
                           self.grace_ms)

    @property
    def size_ms(self) -> int:
        """``before + after``: the span of times one record joins."""
        return self.before_ms + self.after_ms

    @property
    def retention_ms(self) -> int:
        """How long each side's store keeps a record (Kafka Streams: size + grace)."""
        return self.size_ms + self.grace_ms

    def __str__(self) -> str:
        return f"JoinWindows(before={self.before_ms} ms, after={self.after_ms} ms, grace={self.grace_ms} ms)"
