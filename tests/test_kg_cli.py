"""``kgclip kg build / show / stats / table``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO
from kgclip_core import cli
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.kg.report import BEGIN, END


def run(argv: list[str]) -> int:
    """Run a ``kgclip`` command line in-process, as the console command does."""
    return cli.main(argv)


def test_build_writes_json_and_html(tmp_path, capsys):
    out, page = tmp_path / "kg.json", tmp_path / "kg.html"
    assert run(["kg", "build", "--labels", "kinetics_tps24", "--out", str(out), "--html", str(page)]) == 0
    kg = KnowledgeGraph.load(out)
    assert len(kg.actions) == 24
    assert "vis.Network" in page.read_text(encoding="utf-8")
    assert f"{kg.graph.number_of_nodes()} nodes" in capsys.readouterr().out


def test_build_from_a_label_list(tmp_path):
    out = tmp_path / "kg.json"
    assert run(["kg", "build", "--label-list", "playing guitar", "riding a unicycle", "--out", str(out)]) == 0
    assert KnowledgeGraph.load(out).actions == ["playing guitar", "riding a unicycle"]


def test_show_curated_action_as_a_tree(capsys):
    assert run(["kg", "show", "playing guitar"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("playing guitar  [curated]")
    assert "├─ movements" in out and "guitar (musical instrument)" in out


def test_show_parses_an_unknown_label(capsys):
    assert run(["kg", "show", "riding a unicycle", "--labels", "hmdb51"]) == 0
    out = capsys.readouterr().out
    assert "[parsed]" in out and "not a class of hmdb51" in out and "verbs=['ride']" in out


def test_show_json(capsys):
    assert run(["kg", "show", "BrushingTeeth", "--labels", "ucf101", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["action"] == "BrushingTeeth" and record["units"]["movement"] and record["triples"]


@pytest.mark.parametrize("label", ["", "!!!", "x" * 10_000])
def test_show_bad_label_exits_2_with_a_message(label, capsys):
    assert run(["kg", "show", label]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_stats_json_matches_the_graph(capsys):
    assert run(["kg", "stats", "--labels", "hmdb51", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == KnowledgeGraph.for_label_set("hmdb51").stats()


def test_stats_of_unknown_set_exits_2(capsys):
    assert run(["kg", "stats", "--labels", "no_such_set"]) == 2
    assert "Unknown label set" in capsys.readouterr().err


def test_table_rewrites_the_docs_section(tmp_path, capsys):
    doc = tmp_path / "KG.md"
    doc.write_text(f"# KG\n\nbefore\n{BEGIN}\nold numbers\n{END}\nafter\n", encoding="utf-8")
    assert run(["kg", "table", "--write", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert "old numbers" not in text and text.startswith("# KG\n\nbefore\n") and text.endswith("after\n")
    for name in ("kinetics400", "ucf101", "hmdb51", "kinetics_tps24"):
        assert name in text
    no_markers = tmp_path / "plain.md"
    no_markers.write_text("nothing here", encoding="utf-8")
    assert run(["kg", "table", "--write", str(no_markers)]) == 2


def test_console_command_runs_kg_show():
    proc = subprocess.run([sys.executable, "-m", "kgclip_core.cli", "kg", "show", "hurling (sport)"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("hurling (sport)  [curated]")
