"""Users per region, kept exact while users move between regions.

    user-profiles (key: user id, value: {"name": ..., "region": ...}; a null value deletes the user)
      --> table of the latest profile per user
      --> group by region (repartition) --> count, subtracting a user from the region they left
      --> users-per-region (key: region, value: number of users as a JSON number)

Topic names come from app settings ``profiles`` and ``output``.
Run it with ``streamer run apps.regions:topology``.
"""

from __future__ import annotations

from typing import Any

from streamer import StreamsBuilder, app_setting


def region_of(user_id: str, profile: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return profile["region"], profile


def build() -> StreamsBuilder:
    builder = StreamsBuilder()
    (
        builder.table(app_setting("profiles", "user-profiles"), key_serde="str", value_serde="json", name="profiles")
        .group_by(region_of, name="users-by-region")
        .count("region-counts")
        .to_stream(name="region-updates")
        .to(app_setting("output", "users-per-region"), key_serde="str", value_serde="json", name="to-output")
    )
    return builder


topology = build().build()
