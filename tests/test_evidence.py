"""The evidence of a prediction (``kgclip_core.evidence``): which of the top class's concepts count as shown."""

import pytest
import torch

from kgclip_core import evidence


@pytest.fixture(scope="module")
def full_predictor(make_full_predictor):
    """Every KG-CLIP head on, the triplet encoder included (it measures the evidence)."""
    return make_full_predictor()


def test_evidence_pool_holds_the_top_class_and_the_likeliest_others_up_to_its_cap(monkeypatch):
    # 4 classes over 10 units: class 2 is likeliest, then 0, 3, 1.
    units = torch.zeros(4, 10, dtype=torch.bool)
    units[2, [0, 1, 2]] = units[0, [2, 3, 4]] = units[3, [5, 6, 7, 8]] = units[1, [9]] = True
    logits = torch.tensor([3.0, 1.0, 4.0, 2.0])
    monkeypatch.setattr(evidence, "EVIDENCE_POOL", 3)
    monkeypatch.setattr(evidence, "EVIDENCE_POOL_UNITS", 6)
    # top class whole (0, 1, 2), then class 0's new units (3, 4), then class 3's up to the cap (5); class 1 is
    # beyond the 3 likeliest.
    assert evidence.evidence_pool(logits, units).tolist() == [0, 1, 2, 3, 4, 5]
    monkeypatch.setattr(evidence, "EVIDENCE_POOL_UNITS", 2)  # the top class's units stay, all of them
    assert evidence.evidence_pool(logits, units).tolist() == [0, 1, 2]


def test_triplet_evidence_must_beat_the_strongest_rival_concept(full_predictor, real_clip, monkeypatch):
    labels = full_predictor.resolve_labels("ucf101")
    pred = full_predictor.predict(real_clip, labels=labels)
    assert pred.evidence_measure == "triplet" and pred.evidence
    # By hand: the triplet link to every concept of the likeliest classes that the top class lacks.
    model = full_predictor.model
    _, classes = full_predictor.classes(labels)
    with torch.no_grad():
        out = model.score(model.encode_video(full_predictor.backbone.preprocess(pred.frames)[None]), classes)
        pool = evidence.evidence_pool(out.logits[0], classes.class_unit_mask)
        rivals = pool[~classes.class_unit_mask[pred.class_indices[0], pool]]
        fwd, inv = model.triplet.pair_scores(out.video_emb[:1], "video-movement", classes.unit_emb[rivals])
    assert len(rivals) and pred.evidence_threshold == pytest.approx(float((0.5 * (fwd + inv)).max()), abs=1e-5)
    assert all(e.present == (e.score > pred.evidence_threshold) for e in pred.evidence)
    # With no rival concept to compare against (a pool of the top class alone) it falls back to the cosine.
    monkeypatch.setattr(evidence, "EVIDENCE_POOL", 1)
    alone = full_predictor.predict(real_clip, labels=labels)
    assert alone.evidence_measure == "cosine" and [e.text for e in alone.evidence]
    assert all(e.present == (e.score >= alone.evidence_threshold) for e in alone.evidence)
