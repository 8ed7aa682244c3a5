"""The country lookup app in the test driver: events enriched from a global table of country codes."""

from __future__ import annotations

from typing import Iterator

import pytest

from apps.country_lookup import STORE, topology
from streamer.testing import TopologyTestDriver

COUNTRIES, EVENTS, ENRICHED = "countries", "events", "events-with-country"


@pytest.fixture
def driver() -> Iterator[TopologyTestDriver]:
    with TopologyTestDriver(topology, application_id="country-lookup", partitions={COUNTRIES: 3}) as driver:
        driver.pipe_many(COUNTRIES, [("DE", {"name": "Germany"}), ("FR", {"name": "France"}),
                                     ("JP", {"name": "Japan"})])
        yield driver


def test_events_get_the_name_of_their_country_and_keep_their_key_and_time(driver: TopologyTestDriver) -> None:
    driver.pipe(EVENTS, "u1", {"country": "DE", "action": "login"}, timestamp=10)
    driver.pipe(EVENTS, "u2", {"country": " fr ", "action": "buy"}, timestamp=11)
    assert [(r.key, r.value, r.timestamp) for r in driver.read_records(ENRICHED)] == [
        ("u1", {"country": "DE", "action": "login", "country_name": "Germany"}, 10),
        ("u2", {"country": " fr ", "action": "buy", "country_name": "France"}, 11),
    ]


def test_unknown_or_missing_codes_come_through_with_no_name(driver: TopologyTestDriver) -> None:
    driver.pipe_many(EVENTS, [("u1", {"country": "XX"}), ("u2", {"action": "view"}), ("u3", {"country": ""})])
    assert [value["country_name"] for _, value in driver.read_output(ENRICHED)] == [None, None, None]


def test_table_changes_apply_to_the_events_after_them(driver: TopologyTestDriver) -> None:
    driver.pipe(EVENTS, "u1", {"country": "BR"})
    driver.pipe(COUNTRIES, "BR", {"name": "Brazil"})
    driver.pipe(EVENTS, "u1", {"country": "BR"})
    driver.pipe(COUNTRIES, "JP", {"name": "Nippon"})
    driver.pipe(COUNTRIES, "DE", None)
    driver.pipe_many(EVENTS, [("u2", {"country": "JP"}), ("u3", {"country": "DE"})])
    assert [value["country_name"] for _, value in driver.read_output(ENRICHED)] == [None, "Brazil", "Nippon", None]
    assert driver.store(STORE).all() == {"BR": {"name": "Brazil"}, "FR": {"name": "France"},
                                         "JP": {"name": "Nippon"}}


def test_the_table_lives_outside_the_tasks_and_needs_no_repartitioning() -> None:
    assert [spec.topic for spec in topology.global_stores] == [COUNTRIES]
    assert topology.repartition_topics == [] and topology.stores() == []
