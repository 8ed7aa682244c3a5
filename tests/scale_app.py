"""The app of the scale tests and the failover benchmark: a count per key, one stateful sub-topology.

Topics come from app settings ``input`` and ``output``; the output value is the key's count.
"""

from __future__ import annotations

from streamer import StreamsBuilder, app_setting
from streamer.topology.topology import Topology

STORE = "scale-counts"


def build() -> Topology:
    builder = StreamsBuilder()
    (
        builder.stream(app_setting("input", "scale-input"), key_serde="str", value_serde="str", name="events")
        .group_by_key()
        .count(STORE)
        .to_stream(name="count-updates")
        .to(app_setting("output", "scale-output"), key_serde="str", value_serde="json", name="to-output")
    )
    return builder.build()
