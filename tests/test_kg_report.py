"""Stats tables and the parser-versus-curated agreement."""

from __future__ import annotations

import pytest

from kgclip_core.errors import ConfigError
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.kg.knowledge import load_knowledge
from kgclip_core.kg.parser import knowledge_from_label
from kgclip_core.kg.report import parser_agreement, stats_markdown, write_stats_section


def test_parser_agreement_counts_are_consistent():
    counts = parser_agreement("kinetics_tps24")
    knowledge = load_knowledge("kinetics_tps24")
    assert counts["classes"] == len(knowledge)
    assert counts["motion_agrees"] <= counts["with_motion"] <= counts["classes"]
    assert counts["object_agrees"] <= counts["with_object"] <= counts["classes"]
    assert counts["with_motion"] == sum(bool(knowledge_from_label(c).motions) for c in knowledge)


def test_markdown_has_one_column_per_set_and_every_count():
    stats = [KnowledgeGraph.for_label_set(n).stats() for n in ("hmdb51", "kinetics_tps24")]
    stats[0]["parser_agreement"] = parser_agreement("hmdb51")
    text = stats_markdown(stats)
    assert "| type | hmdb51 | kinetics_tps24 |" in text
    assert f"| **all** | {stats[0]['nodes']} | {stats[1]['nodes']} |" in text
    assert f"| **all** | {stats[0]['edges']} | {stats[1]['edges']} |" in text
    agreement = stats[0]["parser_agreement"]
    assert f"{agreement['motion_agrees']}/{agreement['with_motion']}" in text
    rows = [line for line in text.splitlines() if line.startswith("| parser finds")]
    assert len(rows) == 2 and all(line.endswith("| - |") for line in rows)  # no agreement counted for tps


def test_writing_needs_the_markers(tmp_path):
    with pytest.raises(ConfigError):
        write_stats_section(tmp_path / "missing.md", [])
