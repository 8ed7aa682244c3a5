"""``streamer describe --format``: the pictures hold every processor, topic and store of a topology."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from apps.order_lines import build as build_order_lines
from apps.wordcount import build as build_wordcount
from streamer.cli import main
from streamer.topology.describe import describe_topology
from streamer.topology.render import render_topology, topology_graph


def test_text_is_the_readable_outline() -> None:
    topology = build_wordcount().build()
    assert render_topology(topology, "text", "wc") == describe_topology(topology, "wc")


def test_mermaid_draws_sub_topologies_topics_and_stores() -> None:
    picture = render_topology(build_wordcount().build(), "mermaid", "wc")
    assert picture.startswith("flowchart TB\n")
    assert picture.count("subgraph sub") == 2 and picture.count("\n  end") == 2
    ids = dict(re.findall(r'^\s+(\w+)\W+"([^"]+)"', picture, re.M))
    by_label = {label.split("<br/>")[0]: ident for ident, label in ids.items()}
    edges = set(re.findall(r"^  (\w+ \S+ \w+)$", picture, re.M))
    repartition = by_label["wc-words-by-word-repartition"]
    assert f"{by_label['streams-plaintext-input']} --> {by_label['lines']}" in edges
    assert f"{by_label['words-by-word-repartition-sink']} --> {repartition}" in edges
    assert f"{repartition} --> {by_label['words-by-word-repartition-source']}" in edges
    assert f"{by_label['word-counts-count']} -.- {by_label['word-counts (key_value)']}" in edges
    assert f"{by_label['word-counts (key_value)']} -.-> {by_label['wc-word-counts-changelog']}" in edges
    assert f"{by_label['to-output']} --> {by_label['streams-wordcount-output']}" in edges


def test_dot_is_a_graph_with_one_cluster_per_sub_topology() -> None:
    picture = render_topology(build_wordcount().build(), "dot")
    assert picture.startswith("digraph topology {") and picture.endswith("}")
    assert picture.count("subgraph cluster_") == 2
    assert '[label="<application.id>-word-counts-changelog", shape=box, style=rounded]' in picture
    assert re.search(r"\w+ -> \w+ \[style=dashed, dir=none\];", picture)


def test_a_store_and_a_processor_of_the_same_name_stay_two_nodes() -> None:
    topology = build_order_lines().build()
    graph = topology_graph(topology, "ol")
    labels = [node.label.split("\n")[0] for node in graph.nodes.values()]
    names = [node.name for sub in topology.subtopologies for node in sub.nodes]
    assert set(names) <= set(labels) and len(graph.nodes) == len(set(graph.nodes))
    drawn = {"priced-lines-result", "priced-lines (key_value)", "ol-priced-lines-subscription-response-topic"}
    assert drawn <= set(labels)
    assert all(a in graph.nodes and b in graph.nodes for a, b, _ in graph.edges)


def test_the_command_prints_the_chosen_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "apps.wordcount:topology", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("flowchart TB")


def test_the_operations_guide_shows_the_current_word_count() -> None:
    guide = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text()
    pictures = re.findall(r"```mermaid\n(.*?)\n```", guide, re.S)
    assert render_topology(build_wordcount().build(), "mermaid", "wordcount") in pictures
