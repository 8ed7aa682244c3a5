"""Events enriched with a country name, looked up in a global table of country codes.

    countries (key: ISO code such as "DE", value: {"name": ...}; a tombstone removes a code)
      --> global table "countries", whole on every worker
    events (key: any, e.g. a user id; value: {"country": code, ...})
      --> left join with the global table on the event's "country" field
      --> events-with-country (same key; the event with "country_name": the name, or None
          when the code is missing or unknown)

The events topic need not be co-partitioned with the countries topic (nor have its
partition count), and events keep their own key: a global table is joined on any key
computed from the record. Topic names come from app settings ``countries``, ``events``
and ``enriched``. Run it with ``streamer run apps.country_lookup:topology``.
"""

from __future__ import annotations

from typing import Any

from streamer import StreamsBuilder, app_setting

STORE = "countries"


def country_code(_key: Any, event: dict[str, Any]) -> str | None:
    """The table key of an event: its country code, upper-cased; None (no lookup) if it has none."""
    code = event.get("country")
    return code.strip().upper() if isinstance(code, str) and code.strip() else None


def with_country(event: dict[str, Any], country: dict[str, Any] | None) -> dict[str, Any]:
    return {**event, "country_name": None if country is None else country["name"]}


def build() -> StreamsBuilder:
    builder = StreamsBuilder()
    countries = builder.global_table(app_setting("countries", "countries"), key_serde="str", value_serde="json",
                                     name=STORE)
    events = builder.stream(app_setting("events", "events"), key_serde="str", value_serde="json", name="events")
    (events.left_join(countries, with_country, key_selector=country_code, name="country-lookup")
     .to(app_setting("enriched", "events-with-country"), key_serde="str", value_serde="json"))
    return builder


topology = build().build()
