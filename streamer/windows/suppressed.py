"""Suppression of a windowed table's updates until each window closes."""

from __future__ import annotations

from dataclasses import dataclass, replace

from streamer.windows.windows import Duration, millis


@dataclass(frozen=True)
class Suppressed:
    """What ``Table.suppress`` holds back; build it with ``Suppressed.until_window_closes()``.

    The buffer is a logged store on disk, so unlike Kafka Streams there is no in-memory
    bound to configure: it holds every open window's latest result.
    """

    name: str | None = None
    idle_ms: int | None = None

    @staticmethod
    def until_window_closes(name: str | None = None) -> Suppressed:
        """Exactly one final result per window and key, once the window's grace period has passed.

        Deletions (None results) are dropped rather than forwarded, as in Kafka Streams.
        ``name`` names the processor and, with ``-store``, its buffer.
        """
        return Suppressed(name)

    def close_when_idle(self, idle_ms: Duration) -> Suppressed:
        """Let wall-clock time advance stream time once no update arrived for ``idle_ms``.

        Final results then come out without new input; an update that arrives later for a
        window closed this way is dropped as late.
        """
        return replace(self, idle_ms=millis(idle_ms, "close_when_idle idle_ms", minimum=1))

    def with_name(self, name: str) -> Suppressed:
        return replace(self, name=name)
