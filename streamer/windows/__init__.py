"""Windows: specifications, the windowed key, its serdes, and suppression of windowed tables."""

from streamer.windows.join_windows import JoinWindows as JoinWindows
from streamer.windows.serde import SessionWindowedSerde, TimeWindowedSerde, WindowedJsonSerde
from streamer.windows.suppressed import Suppressed
from streamer.windows.windowed import Windowed
from streamer.windows.windows import EmitStrategy, SessionWindows, SlidingWindows, TimeWindows

__all__ = [
    "EmitStrategy",
    "SessionWindowedSerde",
    "SessionWindows",
    "SlidingWindows",
    "Suppressed",
    "TimeWindowedSerde",
    "TimeWindows",
    "WindowedJsonSerde",
    "Windowed",
]
