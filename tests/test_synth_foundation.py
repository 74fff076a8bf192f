"""The synthetic world's pretrained CLIP: a short pretraining learns, the shipped one recognises
fresh clips zero-shot, through the same loading path as a user's local CLIP weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kgclip_core.backbone import BackboneConfig, load_backbone
from kgclip_core.synth.pretrain import PretrainConfig, Pretrainer
from kgclip_core.synth.zeroshot import render_eval_clips, zero_shot_accuracy

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints" / "foundation" / "open_clip_model.safetensors"
# The shipped foundation (after its region stage) scored 93.8% by description on the report's 240
# test clips (docs/TESTBED.md) and 92% on this test's 24; the threshold leaves room for a small
# sample's spread (chance: 12.5%).
NOVEL_MIN_ACCURACY = 65.0
EASY_CLASSES = ("raise both arms", "squat", "kick right leg", "bend forward")


@pytest.fixture(scope="module")
def shipped_backbone():
    return load_backbone(BackboneConfig("kgclip-synth", pretrained=str(SHIPPED), device="cpu", use_text_cache=False))


def test_shipped_foundation_loads_through_the_ordinary_backbone_path(shipped_backbone):
    assert SHIPPED.stat().st_size < 25 * 2**20
    assert not shipped_backbone.random_weights
    saved = load_file(str(SHIPPED))
    state = shipped_backbone.model.state_dict()
    assert saved.keys() == state.keys()
    assert all(torch.equal(saved[k], state[k]) for k in saved)


def test_shipped_foundation_recognises_fresh_novel_compositions_zero_shot(shipped_backbone, tmp_path):
    clips = render_eval_clips(tmp_path, "synthetic_novel", per_class=3, seed=4242)
    acc = zero_shot_accuracy(shipped_backbone, clips)
    assert acc["description"] >= NOVEL_MIN_ACCURACY, acc


def test_the_foundation_predictor_runs_training_free_on_the_synthetic_labels(foundation, tmp_path):
    predictor = foundation
    clips = render_eval_clips(tmp_path, "synthetic", per_class=1, seed=99, classes=("raise both arms",))
    pred = predictor.predict(clips.paths[0], top_k=3)
    assert pred.label_set == "synthetic" and len(pred.labels) == 3
    assert "training-free" in pred.model and not pred.random_weights
    assert pred.units and pred.unit_maps is not None  # the explanations run on it too


def test_a_short_pretraining_lifts_zero_shot_well_above_chance(tmp_path):
    # The suite's longest test: 52 s on a quiet 2-core machine, 141-223 s beside other heavy jobs.
    # Measured 70% (description + units) and 65% (description alone). It is as short as its
    # assertion allows: 300 steps gave 35% (the towers sit on a plateau for ~200 steps), 4 rendered
    # frames per corpus clip 45%, a batch of 16 collapsed the text embeddings.
    cfg = PretrainConfig(corpus_size=500, steps=500, batch_size=32, check_every=100)
    trainer = Pretrainer(cfg, tmp_path / "run")
    result = trainer.run()
    backbone = load_backbone(BackboneConfig("kgclip-synth", pretrained=str(result.weights), device="cpu",
                                            use_text_cache=False))
    clips = render_eval_clips(tmp_path / "clips", "synthetic", per_class=5, seed=7, classes=EASY_CLASSES)
    acc = zero_shot_accuracy(backbone, clips)
    assert acc["description+units"] >= 50.0, acc  # chance: 25%


def test_the_evidence_of_a_right_prediction_is_the_true_class_s_own_concepts(foundation, tmp_path):
    from kgclip_core.explain import evidence_table
    from kgclip_core.explain.graph import MATCH_MARK, prediction_graph
    from kgclip_core.kg.graph import KnowledgeGraph

    predictor = foundation
    kg = KnowledgeGraph.for_label_set("synthetic")
    classes = ("clap hands", "wave right hand", "kick left leg")
    clips = render_eval_clips(tmp_path, "synthetic", per_class=1, seed=31, classes=classes)
    right = 0
    for path, label in zip(clips.paths, clips.labels):
        pred = predictor.predict(path, top_k=3)
        if pred.labels[0] != classes[label]:
            continue
        right += 1
        expected = set(kg.units_of(classes[label])["movement"])
        listed = {e.text for e in pred.evidence if e.type == "movement"}
        assert listed == expected  # every movement of the true class, and only those
        assert any(e.present for e in pred.evidence) and pred.evidence_threshold is not None
        assert [e.score for e in pred.evidence] == sorted((e.score for e in pred.evidence), reverse=True)
        assert all(e.present == (e.score >= pred.evidence_threshold) for e in pred.evidence)
        assert len(evidence_table(pred)) == len(pred.evidence)
        marked = {d["label"].split("  [")[0] for _, d in prediction_graph(pred).graph.nodes(data=True)
                  if MATCH_MARK in d["label"]}
        assert marked == {e.text for e in pred.evidence if e.present}  # the KG view marks what the clip shows
    assert right >= 2
