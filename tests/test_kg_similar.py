"""Typed labels point to the curated actions they look like; sports terms parse to movements."""

from __future__ import annotations

from kgclip_core.kg.parser import knowledge_from_label
from kgclip_core.kg.resolve import knowledge_for
from kgclip_core.kg.similar import lookalikes


def _closest(label: str) -> list[str]:
    return [like.action for like in lookalikes(label, knowledge_for(label))]


def test_typed_sports_and_everyday_labels_look_like_their_curated_actions():
    assert _closest("tennis serve")[0] == "playing tennis"
    assert "TennisSwing" in _closest("forehand")
    assert _closest("walking the dog")[0] == "WalkingWithDog"
    assert _closest("cartwheel")[0] == "cartwheeling"
    assert "juggling balls" in _closest("juggling knives")


def test_a_curated_label_is_not_its_own_lookalike_and_scores_are_ranked():
    found = lookalikes("playing tennis", knowledge_for("playing tennis"), limit=5)
    assert "playing tennis" not in [like.action for like in found]
    assert [like.score for like in found] == sorted((like.score for like in found), reverse=True)
    assert all(0 < like.score <= 1 for like in found)


def test_sports_terms_parse_to_movements():
    assert [m.phrase for m in knowledge_from_label("forehand").movements] == ["arm swing racket"]
    assert [m.phrase for m in knowledge_from_label("tennis serve").movements] == ["hand hit racket"]
    assert [m.phrase for m in knowledge_from_label("cartwheel").movements] == ["whole body rotate"]
    assert "barbell" in knowledge_from_label("deadlift").objects
