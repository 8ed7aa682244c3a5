"""Word count: the running count of every word in a stream of text lines.

    streams-plaintext-input  (value: a line of UTF-8 text)
      --> split into lower-case words --> group by word (repartition) --> count
      --> streams-wordcount-output  (key: the word, value: its count as a JSON number)

Topic names come from app settings ``input`` and ``output``.
Run it with ``streamer run apps.wordcount:topology``.
"""

from __future__ import annotations

import re

from streamer import StreamsBuilder, app_setting

_WORD = re.compile(r"\w+")


def words(line: str) -> list[str]:
    return _WORD.findall(line.lower())


def build() -> StreamsBuilder:
    builder = StreamsBuilder()
    (
        builder.stream(app_setting("input", "streams-plaintext-input"), value_serde="str", name="lines")
        .flat_map_values(words, name="split-words")
        .group_by(lambda _key, word: word, key_serde="str", name="words-by-word")
        .count("word-counts")
        .to_stream(name="count-updates")
        .to(app_setting("output", "streams-wordcount-output"), key_serde="str", value_serde="json", name="to-output")
    )
    return builder


topology = build().build()
