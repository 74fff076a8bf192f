"""Lexicon look-ups: body-part words, plurals and aliases, hierarchy, verbs and defaults."""

from __future__ import annotations

import pytest

from kgclip_core.kg.lexicon import declared_objects, default_lexicon, load_lexicon_data, load_parser_data


@pytest.fixture(scope="module")
def lex():
    return default_lexicon()


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("teeth", ("mouth", None)),
        ("hands", ("hand", "both")),
        ("legs", ("leg", "both")),
        ("feet", ("foot", "both")),
        ("hair", ("head", None)),
        ("Fingers", ("fingers", None)),
        ("whole-body", ("whole body", None)),
        ("torso", ("torso", None)),
    ],
)
def test_body_part_words(lex, word, expected):
    assert lex.body_part(word) == expected


def test_non_body_part_words_are_not_body_parts(lex):
    assert lex.body_part("guitar") is None
    assert lex.body_part("") is None


def test_hierarchy_runs_up_to_the_whole_body(lex):
    assert lex.ancestors("fingers") == ["hand", "arm", "shoulder", "torso", "whole body"]
    assert lex.ancestors("whole body") == []
    assert lex.body_parts["hand"].lateral and not lex.body_parts["head"].lateral


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [("balls", "ball"), ("Bike", "bicycle"), ("yo yo", "yo-yo"), ("knives", "knife"), ("golf clubs", "golf club"),
     ("stair", "stairs"), ("dumbbells", "dumbbell")],
)
def test_object_lookup_handles_plurals_aliases_and_hyphens(lex, phrase, expected):
    assert lex.object(phrase) == expected


def test_scenes_have_an_indoor_or_outdoor_category(lex):
    assert lex.scene("swimming pool") == "pool"
    assert lex.scene_category("kitchen") == "indoor"
    assert lex.scene_category("beach") == "outdoor"
    assert lex.scene("guitar") is None


def test_verbs_and_motions(lex):
    assert lex.verb("ride") == "ride"
    assert lex.verb("hurl") == "throw" and lex.motion("hurl") == "throw"
    assert lex.verb("raise") == "raise" and lex.motion("raise") == "lift"
    assert lex.motion("xyzzy") is None
    assert lex.verb_object("skateboard") == "skateboard"


@pytest.mark.parametrize(
    ("verb", "expected"),
    [("kick", ("foot", "kick")), ("jump", ("whole body", "jump")), ("throw", ("hand", "throw")),
     ("smile", ("mouth", "smile")), ("play", ("hand", "hold"))],
)
def test_default_movement_of_a_verb(lex, verb, expected):
    assert lex.default_movement([verb]) == expected
    assert lex.states_of(expected[0]) and expected[1] in lex.states_of(expected[0])


def test_objects_declared_by_knowledge_files_are_known(lex):
    declared = declared_objects()
    for obj, category in declared.items():
        assert lex.object_category(obj) == category
        assert category in lex.object_categories


def test_parser_aids_name_only_lexicon_concepts():
    lex_data, aids = load_lexicon_data(), load_parser_data()
    parts = set(lex_data["body_parts"])
    states = {s for group in lex_data["part_states"].values() for s in group}
    scenes = {s for group in lex_data["scenes"].values() for s in group}
    assert all(p in parts and (s is None or s in lex_data["sides"]) for p, s in aids["body_part_words"].values())
    assert set(aids["verb_synonyms"].values()) <= set(lex_data["motions"]) | states
    assert set(aids["object_aliases"].values()) | set(aids["verb_objects"].values()) <= set(lex_data["objects"])
    assert set(aids["scene_aliases"].values()) <= scenes
    assert sorted(aids["part_preference"]) == sorted(parts)
    assert all(s in lex_data["part_states"][p] for p, s in aids["verb_movements"].values())
