"""The graph views: offline, escaped HTML, the iframe wrapper, the text tree and the app panel."""

from __future__ import annotations

import html
import json
import re

import pytest

from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.kg.render import SELECTED_COLOUR, action_view, concept_tree, graph_html, iframe

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def tps():
    return KnowledgeGraph.for_label_set("kinetics_tps24")


def _nodes(page: str) -> list[dict]:
    return json.loads(re.search(r"new vis\.DataSet\((\[.*?\])\);\nvar edges", page, re.S).group(1))


def test_page_is_self_contained(tps):
    page = graph_html(tps)
    assert "<link" not in page
    assert not re.search(r"""<script[^>]*\bsrc=""", page)
    assert "cdn" not in page.lower().replace("cdn_resources", "")
    assert "vis.Network" in page and len(page) > 100_000  # vis-network inlined


def test_selected_action_is_highlighted(tps):
    page = graph_html(tps, selected="hurling (sport)")
    nodes = {n["id"]: n for n in _nodes(page)}
    assert nodes["action:hurling (sport)"]["color"] == SELECTED_COLOUR
    assert sum(n["color"] == SELECTED_COLOUR for n in nodes.values()) == 1
    assert 'var selected = "action:hurling (sport)";' in page
    assert len(nodes) == tps.graph.number_of_nodes()


def test_user_text_never_becomes_an_element():
    kg = KnowledgeGraph.for_label_set([XSS, "playing guitar"])
    page = graph_html(kg, selected=XSS)
    assert "<img" not in page and "onerror=alert(1)>" not in page
    labels = [n["label"] for n in _nodes(page)]
    assert XSS in labels  # still shown, as text
    wrapped = iframe(page)
    assert "<img" not in wrapped and wrapped.count("<iframe") == 1
    srcdoc = re.search(r'srcdoc="([^"]*)"', wrapped).group(1)
    assert html.unescape(srcdoc) == page
    assert 'sandbox="allow-scripts"' in wrapped


def test_concept_tree_lists_every_movement(tps):
    tree = concept_tree(tps, "juggling balls")
    for movement in tps.movements_of("juggling balls"):
        assert movement in tree
    assert tree.splitlines()[0].startswith("juggling balls  [curated]")


def test_action_view_for_the_app(tps):
    view = action_view(tps, "Juggling Balls", related=3)
    assert view.action == "juggling balls" and view.confidence == "curated"
    assert view.movements == tps.movements_of("juggling balls")
    assert len(view.related) <= 3 and "juggling balls" not in view.related
    assert view.html.startswith("<iframe") and view.description in html.unescape(view.html)


def test_graph_is_laid_out_in_layers_and_sized_to_its_tallest_column(tps):
    from kgclip_core.kg.render import LEVELS, RELATED_LEVEL, ROW_PX

    view = action_view(tps, "juggling balls", related=3)
    page = html.unescape(re.search(r'srcdoc="([^"]*)"', view.html).group(1))
    nodes = _nodes(page)
    levels = {n["id"]: n["level"] for n in nodes}
    assert levels["action:juggling balls"] == 0 and all(n["shape"] == "box" for n in nodes)
    assert all(levels[f"action:{a}"] == RELATED_LEVEL for a in view.related)
    assert {levels[n["id"]] for n in nodes if n["id"].startswith("movement:")} == {LEVELS["movement"]}
    # an action node names its action, so a click can open it; edges carry no text to overlap
    assert {n["action"] for n in nodes if "action" in n} == {"juggling balls", *view.related}
    assert '"label"' not in re.search(r"var edges = new vis\.DataSet\((\[.*?\])\);", page, re.S).group(1)
    tallest = max(list(levels.values()).count(level) for level in set(levels.values()))
    frame_px = int(re.search(r"height: (\d+)px", view.html).group(1))
    assert frame_px >= tallest * ROW_PX  # the frame holds the tallest column at full size
