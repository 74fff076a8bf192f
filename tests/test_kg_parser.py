"""The label parser on the hard labels of the built-in sets, custom labels and bad input."""

from __future__ import annotations

import pytest

from kgclip_core.errors import LabelError
from kgclip_core.kg.parser import (
    knowledge_from_label,
    lemma_candidates,
    load_spacy,
    parse_label,
    parse_text,
    split_label,
)


def test_spacy_is_loaded_once():
    assert load_spacy() is load_spacy()


@pytest.mark.parametrize(
    ("label", "verb", "objects", "parts"),
    [
        # The small model lemmatises "riding" to "rid".
        ("riding a bike", "ride", ["bicycle"], []),
        ("riding mechanical bull", "ride", [], []),
        # ... and reads "brushing teeth" as a noun compound when parsed bare.
        ("brushing teeth", "brush", [], [("mouth", None)]),
        ("BrushingTeeth", "brush", [], [("mouth", None)]),
        ("ApplyEyeMakeup", "apply", [], [("eyes", None)]),
        ("brush_hair", "brush", [], [("head", None)]),
        ("climb_stairs", "climb", ["stairs"], []),
        ("ride_horse", "ride", ["horse"], []),
        ("juggling balls", "juggle", ["ball"], []),
        ("shaking hands", "shake", [], [("hand", "both")]),
        ("kicking with left leg", "kick", [], [("leg", "left")]),
        ("punching bag", "punch", ["punching bag"], []),
        ("salsa dancing", "dance", [], []),
        ("applauding", "applaud", [], []),
        ("running on treadmill", "run", [], []),
    ],
)
def test_hard_labels(label, verb, objects, parts):
    concepts = parse_label(label)
    assert verb in concepts.verbs
    assert set(objects) <= set(concepts.objects)
    assert set(parts) <= set(concepts.body_parts)


@pytest.mark.parametrize(
    ("label", "lemma"),
    [("bartending", "bartend"), ("bobsledding", "bobsled"), ("paragliding", "paraglide"), ("skydiving", "skydive"),
     ("deadlifting", "deadlift"), ("headbanging", "headbang")],
)
def test_verbs_outside_the_lexicon_get_a_sensible_lemma(label, lemma):
    # spaCy's guess for words outside its tables is "bartende", "deadlifte", ...
    assert parse_label(label).verbs == (lemma,)


def test_unknown_verb_on_a_hand_held_object_gives_a_holding_hand():
    k = knowledge_from_label("reading book")
    assert [m.phrase for m in k.movements] == ["hand hold book"]
    assert knowledge_from_label("making bed").movements == ()


def test_parentheses_become_modifiers():
    assert split_label("hurling (sport)") == ("hurling", ("sport",))
    concepts = parse_label("hurling (sport)")
    assert concepts.text == "hurling"
    assert concepts.verbs == ("hurl",) and concepts.motions == ("throw",)
    assert "sport" in concepts.modifiers


def test_camel_case_and_underscores_are_split():
    assert split_label("ApplyEyeMakeup")[0] == "apply eye makeup"
    assert split_label("climb_stairs")[0] == "climb stairs"
    assert parse_label("YoYo").objects == ("yo-yo",)


def test_particles_are_not_objects():
    concepts = parse_label("pull ups")
    assert concepts.verbs == ("pull",)
    assert concepts.objects == ()


def test_scene_words():
    assert parse_label("swimming in the pool").scenes == ("pool",)


def test_lemma_candidates_undo_inflections():
    assert "ride" in lemma_candidates("riding", "rid")
    assert "run" in lemma_candidates("running", "running")
    assert "lie" in lemma_candidates("lying", "lie")


def test_description_parsing_skips_the_doer_and_reads_sides():
    concepts = parse_text("The player swings a racket with the right hand to hit the ball on a court.")
    assert concepts.verbs[:2] == ("swing", "hit")
    assert ("hand", "right") in concepts.body_parts
    assert {"racket", "ball"} <= set(concepts.objects) and "player" not in concepts.objects
    assert concepts.scenes == ("court",)


def test_custom_label_knowledge_is_parsed_and_marked_lower_confidence():
    k = knowledge_from_label("playing guitar")
    assert k.confidence == "parsed"
    assert k.motions == ("play",)
    assert any(m.part == "hand" and m.object == "guitar" for m in k.movements)
    assert "playing guitar" in k.description


def test_named_body_part_without_a_fitting_state_is_kept():
    k = knowledge_from_label("brushing teeth")
    assert [(m.part, m.state) for m in k.movements] == [("hand", "brush")]
    assert k.extra["body_parts"] == [["mouth", None]]


@pytest.mark.parametrize(
    ("label", "phrases"),
    [
        ("march and hold ball", ["leg step", "hand hold ball"]),
        ("march and swing arms", ["leg step", "both arms swing"]),
        ("kick right leg with arms raised", ["right leg kick", "both arms raise"]),
        ("hop on left leg and wave right hand", ["left leg hop", "right hand wave"]),
        ("march in place", ["leg step"]),
    ],
)
def test_each_verb_moves_the_parts_and_objects_of_its_own_clause(label, phrases):
    assert [m.phrase for m in knowledge_from_label(label).movements] == phrases


def test_side_goes_on_the_movement():
    k = knowledge_from_label("raising right arm")
    assert [(m.side, m.part, m.state) for m in k.movements] == [("right", "arm", "raise")]
    assert [m.phrase for m in knowledge_from_label("shaking hands").movements] == ["both hands shake"]


@pytest.mark.parametrize("bad", ["", "   ", "!!!", "()", "x" * 10_000, None, 42])
def test_bad_labels_raise_label_error(bad):
    with pytest.raises(LabelError):
        parse_label(bad)


@pytest.mark.parametrize("label", ["plongée sous-marine", "跳舞", "<img src=x onerror=alert(1)>", "Ünïcödé ☃ dance"])
def test_odd_labels_are_handled(label):
    k = knowledge_from_label(label)
    assert k.confidence == "parsed" and k.name == label
    assert k.description


def test_unrecognised_label_says_so():
    assert "no known action concept" in knowledge_from_label("跳舞").description


@pytest.mark.parametrize("name", ["kinetics400", "ucf101", "hmdb51", "kinetics_tps24"])
def test_every_builtin_class_name_parses_and_mostly_agrees_with_its_curated_entry(name):
    from kgclip_core.kg.report import parser_agreement

    counts = parser_agreement(name)  # parses every class name of the set
    assert counts["with_motion"] >= counts["classes"] // 2
    # When the parser names a motion, it is the curated one for most classes (a regression guard).
    assert counts["motion_agrees"] >= 0.85 * counts["with_motion"]
