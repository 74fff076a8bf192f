"""Ground truth of concepts (``kgclip_core.synth.concepts``): what a rendered clip really shows."""

from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.synth import render_clip
from kgclip_core.synth.captions import random_composition
from kgclip_core.synth.concepts import concept_presence

import numpy as np


def _concepts(kg: KnowledgeGraph, action: str) -> list[tuple[str, str]]:
    return [(u, kind) for kind, units in kg.units_of(action).items() for u in units]


def test_a_class_shows_its_own_concepts_and_not_its_mirror_image():
    kg = KnowledgeGraph.for_label_set("synthetic")
    _, truth = render_clip("wave right hand", seed=3)
    own = _concepts(kg, "wave right hand")
    shown = concept_presence(truth, kg, own)
    assert shown.shape == (len(truth["frames"]), len(own))
    assert shown.any(0).all()  # every concept of the clip's own class happens in some frame
    mirror = [("left hand wave", "movement"), ("left arm raise", "movement"), ("leg", "body_part"), ("kick", "motion")]
    assert not concept_presence(truth, kg, mirror).any()


def test_presence_follows_the_frames_not_the_class():
    kg = KnowledgeGraph.for_label_set("synthetic")
    _, truth = render_clip("squat and hold ball", seed=3)
    concepts = [("whole body squat", "movement"), ("right hand hold ball", "movement"), ("ball", "object"),
                ("squat", "motion"), ("leg", "body_part")]
    shown = concept_presence(truth, kg, concepts)
    squatting = np.array([f["parts"]["whole body"]["state"] == "squat" for f in truth["frames"]])
    assert (shown[:, 0] == squatting).all() and (shown[:, 3] == squatting).all()  # the motion runs when its program does
    assert 0 < squatting.sum() < len(squatting)  # the squat starts after the clip does: some frames do not show it
    assert shown[:, 2].all()  # the ball is held in view throughout
    # Only the frames asked for, in their order.
    assert (concept_presence(truth, kg, concepts, frames=[5, 0]) == shown[[5, 0]]).all()


def test_a_random_composition_is_read_from_its_own_programs():
    kg = KnowledgeGraph.for_label_set("synthetic")
    action = random_composition(np.random.default_rng(11))
    _, truth = render_clip(action, seed=1)
    movements = [(m, "movement") for m in kg.semantic_units("movement")]
    shown = concept_presence(truth, kg, movements, action=action).any(0)
    named = {" ".join(w for w in (side, part, state, obj) if w) for part, side, state, obj in action.movements()}
    assert {m for (m, _), s in zip(movements, shown) if s} <= named and shown.any()
