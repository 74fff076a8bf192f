"""The knowledge graph: typed nodes and edges, units, triples, subgraphs, stats and JSON."""

from __future__ import annotations

import json
from collections import Counter

import networkx as nx
import pytest

from kgclip_core.errors import ConfigError, LabelError
from kgclip_core.kg.graph import NODE_TYPES, RELATIONS, UNIT_TYPES, KnowledgeGraph
from kgclip_core.kg.knowledge import load_knowledge

# (source type, relation, target type) allowed by the schema.
SCHEMA = {
    ("action", "involves", "movement"),
    ("movement", "of_body_part", "body_part"),
    ("movement", "in_state", "part_state"),
    ("part_state", "of_body_part", "body_part"),
    ("movement", "uses_object", "object"),
    ("action", "uses_object", "object"),
    ("action", "occurs_in", "scene"),
    ("action", "has_motion", "motion"),
    ("action", "involves_part", "body_part"),
    ("body_part", "part_of", "body_part"),
}


@pytest.fixture(scope="module")
def hmdb():
    return KnowledgeGraph.for_label_set("hmdb51")


@pytest.fixture(scope="module")
def custom():
    return KnowledgeGraph.for_label_set(["playing guitar", "riding a unicycle", "brushing teeth"])


def _edge_types(kg):
    types = kg.graph.nodes(data="type")
    return {(types[u], r, types[v]) for u, v, r in kg.graph.edges(data="relation")}


def test_nodes_and_edges_are_typed(hmdb, custom):
    for kg in (hmdb, custom):
        assert {t for _, t in kg.graph.nodes(data="type")} <= set(NODE_TYPES)
        assert _edge_types(kg) <= SCHEMA
        assert all(n == f"{d['type']}:{d['label'] if d['type'] != 'action' else d['name']}"
                   for n, d in kg.graph.nodes(data=True))


def test_graph_follows_the_curated_knowledge(hmdb):
    knowledge = load_knowledge("hmdb51")
    assert hmdb.actions == list(knowledge)
    for name, entry in knowledge.items():
        assert hmdb.movements_of(name) == list(dict.fromkeys(m.phrase for m in entry.movements))
        units = hmdb.units_of(name)
        assert units["motion"] == list(entry.motions)
        assert units["scene"] == list(entry.scenes)
        assert set(entry.objects) <= set(units["object"])
        assert hmdb.description(name) == entry.description
        assert hmdb.confidence(name) == "curated"


def test_concepts_are_shared_between_actions(hmdb):
    actions_of = Counter()
    for node, data in hmdb.graph.nodes(data=True):
        if data["type"] == "part_state":
            ancestors = nx.ancestors(hmdb.graph, node)
            actions_of[node] = sum(hmdb.graph.nodes[a]["type"] == "action" for a in ancestors)
    assert max(actions_of.values()) >= 3


def test_semantic_units_by_type(hmdb):
    all_units = hmdb.semantic_units()
    for t in UNIT_TYPES:
        units = hmdb.semantic_units(t)
        assert units and len(units) == len(set(units))
        assert set(units) <= set(all_units)
    assert "hand" in hmdb.semantic_units("body_part")
    with pytest.raises(ConfigError):
        hmdb.semantic_units("colour")


def test_units_of_an_action_are_units_of_the_set(hmdb):
    units = hmdb.units_of("brush hair")
    assert set(units) == set(UNIT_TYPES)
    for t, texts in units.items():
        assert set(texts) <= set(hmdb.semantic_units(t))
    assert "hand" in units["body_part"]


def test_triples_come_with_their_inverses(hmdb):
    triples = hmdb.triples()
    n_movements = sum(len(hmdb.movements_of(a)) for a in hmdb.actions)
    assert len(triples) == 2 * n_movements
    forward = {(h, t) for h, r, t in triples if r == "action_movement"}
    inverse = {(t, h) for h, r, t in triples if r == "movement_action"}
    assert forward == inverse


def test_video_triples(hmdb):
    movements = hmdb.movements_of("catch")
    extra = hmdb.triples({"v1.mp4": "catch"})[len(hmdb.triples()):]
    assert extra == hmdb.video_triples("v1.mp4", "catch")
    assert ("v1.mp4", "video_action", "catch") in extra and ("catch", "action_video", "v1.mp4") in extra
    assert len(extra) == 2 + 2 * len(movements)
    assert {(t, h) for h, r, t in extra if r == "video_movement"} == {
        (h, t) for h, r, t in extra if r == "movement_video"
    }


def test_triples_of_an_action_cover_its_movements(hmdb):
    triples = hmdb.triples_of("catch")
    assert {t for h, r, t in triples if r == "involves"} == set(hmdb.movements_of("catch"))
    assert {r for _, r, _ in triples} <= set(RELATIONS)


def test_actions_found_by_display_name_and_search():
    ucf = KnowledgeGraph.for_label_set("ucf101")
    assert ucf.action_node("Apply Eye Makeup") == "action:ApplyEyeMakeup"
    assert ucf.action_node("apply eye makeup") == "action:ApplyEyeMakeup"
    assert ucf.search("makeup")[0] == "ApplyEyeMakeup"
    with pytest.raises(LabelError):
        ucf.action_node("no such action")


def test_custom_labels_reuse_curated_entries_or_are_parsed(custom):
    assert custom.confidence("playing guitar") == "curated"
    assert custom.confidence("riding a unicycle") == "parsed"
    assert "ride" in custom.units_of("riding a unicycle")["motion"]
    # UCF-101's "BrushingTeeth" displays as "Brushing Teeth": the typed label reuses its entry.
    assert custom.confidence("brushing teeth") == "curated"
    assert custom.stats()["confidence"] == {"curated": 2, "parsed": 1}


def test_subgraph_keeps_actions_and_only_the_named_units(hmdb):
    sub = hmdb.subgraph(["brush hair", "catch"])
    assert sorted(sub.actions) == ["brush hair", "catch"]
    assert set(sub.units_of("catch")["movement"]) == set(hmdb.movements_of("catch"))
    only = hmdb.subgraph(["catch"], units=["hand"])
    assert {d["label"] for n, d in only.graph.nodes(data=True) if d["type"] != "action"} == {"hand"}


def test_related_actions_share_concepts(hmdb):
    related = hmdb.related("shoot bow", k=3)
    assert 0 < len(related) <= 3
    counts = [c for _, c in related]
    assert counts == sorted(counts, reverse=True) and counts[0] > 0
    assert "shoot bow" not in [a for a, _ in related]


@pytest.mark.parametrize("name", ["hmdb51", "kinetics_tps24"])
def test_stats_are_consistent(name):
    kg = KnowledgeGraph.for_label_set(name)
    stats = kg.stats()
    assert sum(stats["nodes_by_type"].values()) == stats["nodes"] == kg.graph.number_of_nodes()
    assert sum(stats["edges_by_relation"].values()) == stats["edges"] == kg.graph.number_of_edges()
    assert stats["nodes_by_type"]["action"] == len(kg.actions) == sum(stats["confidence"].values())
    knowledge = load_knowledge(name)
    with_scene = sum(bool(e.scenes) for e in knowledge.values())
    assert stats["coverage"]["scene"] == pytest.approx(with_scene / len(knowledge))
    assert stats["coverage"]["movement"] == 1.0 and stats["coverage"]["motion"] == 1.0


def test_json_round_trip_is_exact(custom, hmdb):
    for kg in (custom, hmdb):
        data = json.loads(json.dumps(kg.to_json()))
        back = KnowledgeGraph.from_json(data)
        assert back.to_json() == kg.to_json()
        assert nx.utils.graphs_equal(back.graph, kg.graph)
        assert all({"id", "type", "label"} <= set(n) for n in data["nodes"])
        assert all(set(e) == {"source", "target", "relation"} for e in data["edges"])


def test_save_and_load(tmp_path, custom):
    path = custom.save(tmp_path / "kg.json")
    assert KnowledgeGraph.load(path).to_json() == custom.to_json()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"nodes": [{"id": "x", "type": "planet", "label": "x"}], "edges": []},
        {"nodes": [{"id": "action:x", "type": "action", "label": "x"}], "edges": []},
        {"nodes": [{"id": "a", "type": "motion", "label": "a"}, {"id": "b", "type": "motion", "label": "b"}],
         "edges": [{"source": "a", "target": "b", "relation": "likes"}]},
    ],
)
def test_bad_json_raises_config_error(data):
    with pytest.raises(ConfigError):
        KnowledgeGraph.from_json(data)


def test_builtin_graphs_are_independent_copies():
    first = KnowledgeGraph.for_label_set("kinetics_tps24")
    first.graph.remove_node(next(iter(first.graph)))
    assert KnowledgeGraph.for_label_set("kinetics_tps24").graph.number_of_nodes() == first.graph.number_of_nodes() + 1
