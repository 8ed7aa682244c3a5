"""Unit tests of the word count app with the in-process test driver: no broker needed.

Copy this file to start testing your own app. Run it with ``pytest apps/tests``.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from apps.wordcount import topology
from streamer.testing import TopologyTestDriver

# The app's default topic names (app settings ``input`` and ``output`` change them).
INPUT = "streams-plaintext-input"
OUTPUT = "streams-wordcount-output"


@pytest.fixture
def driver() -> Iterator[TopologyTestDriver]:
    with TopologyTestDriver(topology, application_id="wordcount") as driver:
        yield driver


def test_every_line_updates_the_counts_of_its_words(driver: TopologyTestDriver) -> None:
    driver.pipe(INPUT, None, "Hello Kafka Streams")
    driver.pipe(INPUT, None, "hello, streamer!")
    assert driver.read_output(OUTPUT) == [
        ("hello", 1),
        ("kafka", 1),
        ("streams", 1),
        ("hello", 2),
        ("streamer", 1),
    ]


def test_latest_counts_and_the_store_agree(driver: TopologyTestDriver) -> None:
    driver.pipe_many(INPUT, [(None, "to be or not to be"), (None, "that is the question")])
    expected = {"to": 2, "be": 2, "or": 1, "not": 1, "that": 1, "is": 1, "the": 1, "question": 1}
    assert driver.read_latest(OUTPUT) == expected
    assert driver.store("word-counts").all() == expected


def test_lines_without_words_change_nothing(driver: TopologyTestDriver) -> None:
    driver.pipe_many(INPUT, [(None, ""), (None, "  ...  ")])
    assert driver.read_output(OUTPUT) == []
    assert driver.store("word-counts").all() == {}


def test_counts_carry_the_timestamp_of_the_line(driver: TopologyTestDriver) -> None:
    driver.pipe(INPUT, None, "tick", timestamp=1_700_000_000_000)
    [record] = driver.read_records(OUTPUT)
    assert (record.key, record.value, record.timestamp) == ("tick", 1, 1_700_000_000_000)


def test_words_are_repartitioned_by_word(driver: TopologyTestDriver) -> None:
    driver.pipe(INPUT, None, "b a b")
    assert driver.read_output("wordcount-words-by-word-repartition") == [("b", "b"), ("a", "a"), ("b", "b")]
