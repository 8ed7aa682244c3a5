"""streamer: Kafka Streams for Python.

Build a topology with ``StreamsBuilder``, run it with ``streamer run module:attr``.
"""

from importlib.metadata import PackageNotFoundError, version

from streamer.config import StreamerConfig, app_setting
from streamer.dsl.builder import StreamsBuilder
from streamer.processors.api import Processor, ProcessorContext, PunctuationType
from streamer.processors.user import RecordProcessor
from streamer.record import Record
from streamer.serde import BYTES, FLOAT, INT, JSON, STRING, FunctionSerde, Serde
from streamer.topology.topology import Topology
from streamer.typed_serde import DataclassSerde, MsgspecSerde, PydanticSerde, typed
from streamer.windows import (
    EmitStrategy,
    SessionWindows,
    SlidingWindows,
    Suppressed,
    TimeWindows,
    Windowed,
)
from streamer.windows.join_windows import JoinWindows

try:
    __version__ = version("streamer")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BYTES",
    "DataclassSerde",
    "EmitStrategy",
    "FLOAT",
    "INT",
    "JSON",
    "JoinWindows",
    "MsgspecSerde",
    "PydanticSerde",
    "STRING",
    "FunctionSerde",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "Record",
    "RecordProcessor",
    "Serde",
    "SessionWindows",
    "SlidingWindows",
    "StreamerConfig",
    "StreamsBuilder",
    "Suppressed",
    "TimeWindows",
    "Topology",
    "Windowed",
    "app_setting",
    "typed",
]
