"""Processor factories for the DSL's stateful operations (aggregations, tables, joins)."""

from __future__ import annotations

from typing import Callable

from streamer.dsl.graph import LogicalNode
from streamer.processors.api import Processor

#: op name -> function building the processor factory of a logical node.
STATEFUL_OPS: dict[str, Callable[[LogicalNode], Callable[[], Processor]]] = {}
