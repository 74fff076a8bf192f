"""Tests of the caption corpus: held-out compositions stay out, captions say what is rendered."""

from __future__ import annotations

import numpy as np
import torch

from kgclip_core.synth import SYNTHETIC, SYNTHETIC_NOVEL, render_clip
from kgclip_core.synth.actions import Action, Step
from kgclip_core.synth.captions import (
    action_name, build_corpus, captions, movement_set, overlaps_novel, random_composition,
)
from kgclip_core.synth.figure import rest_state


def test_no_composition_equals_or_contains_a_novel_action():
    rng = np.random.default_rng(0)
    drawn = [random_composition(rng) for _ in range(3000)]
    novel = [movement_set(a) for a in SYNTHETIC_NOVEL]
    assert not any(n <= movement_set(a) for a in drawn for n in novel)
    # The check itself catches a novel action, the same one split differently, and a superset.
    assert all(overlaps_novel(a) for a in SYNTHETIC_NOVEL)
    assert overlaps_novel(Action("x", (Step("jump"), Step("wave", "right"), Step("wave", "left"))))
    assert overlaps_novel(Action("x", (Step("squat"), Step("wave", "right"), Step("raise", "left"))))
    assert not overlaps_novel(Action("x", (Step("squat"), Step("wave", "left"))))
    # Still a rich corpus: one to three programs, and every training action among the draws.
    assert {len(a.steps) for a in drawn} == {1, 2, 3}
    assert {action_name(a) for a in drawn} >= {a.name for a in SYNTHETIC}


def test_corpus_is_deterministic_and_holds_out_novel_compositions():
    a = build_corpus(12, seed=3, image_size=64, num_frames=4)
    b = build_corpus(12, seed=3, image_size=64, num_frames=4)
    assert a.frames.shape == (12, 4, 3, 64, 64) and a.frames.dtype == torch.uint8
    assert torch.equal(a.frames, b.frames) and a.captions == b.captions and torch.equal(a.keys, b.keys)
    assert not torch.equal(a.frames, build_corpus(12, seed=4, image_size=64, num_frames=4).frames)
    assert not any(overlaps_novel(x) for x in a.actions)
    # Clips with the same key are the same composition.
    for i in range(12):
        for j in range(12):
            assert (a.keys[i] == a.keys[j]) == (movement_set(a.actions[i]) == movement_set(a.actions[j]))


def test_captions_match_the_rendered_programs():
    rng = np.random.default_rng(1)
    for _ in range(12):
        action = random_composition(rng)
        sentence, parts, *names = captions(action, rng)
        _, truth = render_clip(action, seed=int(rng.integers(1000)))
        # Every part state the part-state list names is what the renderer drew in some frame...
        seen = {f"{key} {p['state']}" for frame in truth["frames"] for key, p in frame["parts"].items()}
        listed = [phrase.removesuffix(" ball") for phrase in parts.split(", ")]
        assert set(listed) <= seen, (action.name, set(listed) - seen)
        # ...and every part the renderer moved is in the list.
        moved = {f"{key} {p['state']}" for frame in truth["frames"] for key, p in frame["parts"].items()
                 if p["state"] != rest_state(key)}
        assert moved <= set(listed), (action.name, moved - set(listed))
        # The sentence holds each program's own phrase; a name only for the training actions.
        for step in action.steps:
            assert step.spec.describe(step.sides) in sentence
        assert bool(names) == (action_name(action) is not None)
        if names:
            assert names[0] == action_name(action) and names[0] in names[1]


def test_training_actions_get_their_names():
    rng = np.random.default_rng(2)
    for action in SYNTHETIC:
        texts = captions(action, rng)
        assert texts[2] == action.name
