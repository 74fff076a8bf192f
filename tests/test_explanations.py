"""The shipped demo checkpoint's explanations on freshly rendered clips, against ground truth:
marks decided from the clip, the contrast of a left/right pair, "not sure" on a real clip, and a
typed label the model never learned."""

from __future__ import annotations

import pytest

from kgclip_core.explain.maps import telling_concept
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.synth.concepts import concept_presence
from kgclip_core.synth.dataset import read_ground_truth
from kgclip_core.synth.zeroshot import render_eval_clips


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def clips(folder):
    """Fresh clips (seed 77, none the detector or the model saw) of the classes the tests use."""
    return render_eval_clips(folder, "synthetic", 2, 77, classes=("raise right arm", "wave right hand", "kick left leg", "squat"))


@pytest.fixture(scope="module")
def truths(folder, clips):
    """Each clip's ground truth by its path."""
    return {folder / t["path"]: t for t in read_ground_truth(folder)}


def test_an_absent_concept_of_the_predicted_class_is_marked_absent(demo_predictor, clips, truths):
    """A "raise right arm" clip recognised among classes that all lack it: the winner's concepts
    the clip does not show get ✗, whichever class won."""
    kg = KnowledgeGraph.for_label_set("synthetic")
    labels = ["wave right hand", "punch with right arm", "kick left leg"]
    checked = 0
    for path, label in zip(clips.paths, clips.labels):
        if clips.classes[label] != "raise right arm":
            continue
        pred = demo_predictor.predict(path, labels=labels)
        shown = concept_presence(truths[path], kg, [(e.text, e.type) for e in pred.evidence], pred.frame_indices).any(0)
        absent = [e for e, s in zip(pred.evidence, shown) if not s]
        assert absent and not any(e.present for e in absent), [(e.text, e.score) for e in absent]
        checked += 1
    assert checked == 2


def test_the_contrast_of_a_left_right_pair_names_the_telling_concepts(demo_predictor, clips):
    for path, label in zip(clips.paths, clips.labels):
        if clips.classes[label] != "wave right hand":
            continue
        pred = demo_predictor.predict(path)
        assert pred.class_names[0] == "wave right hand"
        result = demo_predictor.contrast(pred, "wave left hand")
        assert {e.text: e.present for e in result.own} == {"right arm raise": True, "right hand wave": True}
        assert {e.text: e.present for e in result.rival_own} == {"left arm raise": False, "left hand wave": False}
        assert {"arm raise", "hand wave", "wave"} <= set(result.shared)
        assert result.rival_maps is not None and result.rival_maps.shape[1] == 2


def test_a_real_clip_on_the_demo_model_is_flagged_not_sure(demo_predictor, real_clip):
    pred = demo_predictor.predict(real_clip)
    assert pred.fit is not None and pred.unsure


def test_a_right_synthetic_clip_is_not_flagged(demo_predictor, clips):
    pred = demo_predictor.predict(clips.paths[0])
    assert pred.class_names[0] == clips.classes[clips.labels[0]] and not pred.unsure


def test_a_typed_label_the_fine_tuned_model_never_learned_is_flagged(demo_predictor, clips):
    pred = demo_predictor.predict(clips.paths[0], labels=["wave right hand", "tennis serve", "Raise Right Arm"])
    assert pred.unknown_labels == ["tennis serve"]
    assert any("tennis serve" in w and "fine-tuned on 24 actions" in w for w in pred.warnings)


def test_the_first_map_is_of_a_concept_with_a_place_in_the_frame(demo_predictor, clips):
    """"raise right arm" against "wave right hand": the only concept telling them apart is the word
    "lift", which names no part; the first map is the raised arm's movement, which the clip shows."""
    checked = 0
    for path, label in zip(clips.paths, clips.labels):
        if clips.classes[label] != "raise right arm":
            continue
        pred = demo_predictor.predict(path)
        pred.contrast = demo_predictor.contrast(pred, "wave right hand")
        assert [(e.text, e.present) for e in pred.contrast.own] == [("lift", True)]  # shown, but placeless
        first = pred.evidence[telling_concept(pred)]
        assert (first.text, first.type, first.present) == ("right arm raise", "movement", True)
        checked += 1
    assert checked == 2


@pytest.mark.parametrize("action, first, passed_over", [
    ("squat", {"left leg squat", "right leg squat"}, "whole body squat"),  # the whole body names no place
    ("kick left leg", {"left leg kick"}, "left foot kick"),  # a foot is smaller than a patch; its leg is not
])
def test_the_first_map_is_of_the_part_that_moves(demo_predictor, clips, action, first, passed_over):
    """A squat lights a bending leg, not "the whole body"; a kick the kicking leg before its foot,
    though the clip shows both concepts."""
    checked = 0
    for path, label in zip(clips.paths, clips.labels):
        if clips.classes[label] != action:
            continue
        pred = demo_predictor.predict(path)
        assert pred.class_names[0] == action
        shown = {e.text for e in pred.evidence if e.present}
        assert passed_over in shown
        assert pred.evidence[telling_concept(pred)].text in first & shown
        checked += 1
    assert checked == 2
