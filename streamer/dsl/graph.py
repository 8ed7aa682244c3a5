"""The logical graph the DSL builds: operations and their edges, nothing executable.

The topology compiler reads this graph; the DSL never sees processors or clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streamer.topology.topology import StoreSpec


@dataclass(eq=False)
class LogicalNode:
    """One DSL operation.

    ``op`` names the operation (``"filter"``, ``"source"``, ``"count"`` ...) and
    ``params`` holds its arguments. ``key_changed`` marks a node whose output key may
    no longer match the partition its input came from, so grouping or joining after it
    needs a repartition topic.
    """

    name: str
    op: str
    order: int
    params: dict[str, Any] = field(default_factory=dict)
    parents: list[LogicalNode] = field(default_factory=list)
    children: list[LogicalNode] = field(default_factory=list)
    key_changed: bool = False
    stores: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"LogicalNode({self.name!r}, op={self.op!r})"


@dataclass
class LogicalGraph:
    """All nodes in creation order plus the stores they declared."""

    nodes: list[LogicalNode] = field(default_factory=list)
    stores: dict[str, StoreSpec] = field(default_factory=dict)
