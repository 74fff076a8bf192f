"""The marks of a prediction's concepts (``kgclip_core.evidence``) and the contrast of two classes
(``kgclip_core.contrast``), on the tiny model: decided from the clip, the same whichever class won."""

import pytest
import torch

from kgclip_core import evidence
from kgclip_core.errors import LabelError
from kgclip_core.model.concept_detector import feature_width, fit_detector
from kgclip_core.predictor import Predictor

LABELS = ["wave right hand", "wave left hand", "kick right leg", "squat"]


@pytest.fixture(scope="module")
def full_predictor(make_full_predictor):
    """Every KG-CLIP head on the tiny CLIP; no concept detector: the relative rule marks."""
    return make_full_predictor()


@pytest.fixture(scope="module")
def detecting_predictor(make_full_predictor, full_predictor):
    """The same model with a detector over every concept of LABELS (fitted on random frames: its
    marks mean nothing, the mechanics are what is tested)."""
    predictor = make_full_predictor()
    _, classes = predictor.classes(predictor.resolve_labels(LABELS))
    g = torch.Generator().manual_seed(0)
    frames = torch.randn(64, feature_width(predictor.backbone.embed_dim), generator=g)
    labels = (torch.rand(64, len(classes.unit_texts), generator=g) < 0.5).float()
    predictor.detector = fit_detector(frames, labels, classes.unit_texts)
    predictor.detector.unsure_below = 0.5
    return predictor


def test_without_a_detector_every_concept_is_marked_by_the_label_sets_quantile(full_predictor, real_clip):
    pred = full_predictor.predict(real_clip, labels=LABELS)
    assert pred.evidence_measure == "cosine" and pred.fit is None and not pred.unsure
    scores = torch.as_tensor(pred.concept_scores).mean(0)
    assert pred.evidence_threshold == pytest.approx(float(torch.quantile(scores, evidence.EVIDENCE_QUANTILE)), abs=1e-6)
    assert [e.score for e in pred.evidence] == sorted((e.score for e in pred.evidence), reverse=True)
    assert all(e.present == (e.score >= pred.evidence_threshold) for e in pred.evidence)


def test_a_mark_does_not_depend_on_which_class_won(full_predictor, real_clip):
    """The same concept in the same clip gets the same mark as evidence of the winner and as a
    concept of the rival in a contrast."""
    pred = full_predictor.predict(real_clip, labels=LABELS)
    _, classes = full_predictor.classes(full_predictor.resolve_labels(LABELS))
    scores = torch.as_tensor(pred.concept_scores).mean(0)
    marks = {t: bool(s >= pred.evidence_threshold) for t, s in zip(classes.unit_texts, scores)}
    assert all(marks[e.text] == e.present for e in pred.evidence)
    checked = 0
    for rival in LABELS:
        if rival.casefold() != pred.labels[0].casefold():
            other = full_predictor.contrast(pred, rival, labels=LABELS)
            checked += len(other.own) + len(other.rival_own)
            assert all(marks[e.text] == e.present for e in other.own + other.rival_own)
    assert checked


def test_with_a_detector_the_marks_are_calibrated_probabilities(detecting_predictor, real_clip):
    pred = detecting_predictor.predict(real_clip, labels=LABELS)
    assert pred.evidence_measure == "detector" and pred.evidence_threshold == evidence.PRESENT_PROBABILITY
    assert all(0.0 <= e.score <= 1.0 and e.present == (e.score >= 0.5) for e in pred.evidence)
    assert all(e.score == pytest.approx(max(e.frame_scores)) for e in pred.evidence)  # the best frame's
    assert pred.fit is not None and pred.unsure == (pred.fit < 0.5)


def test_fit_is_low_when_the_clip_shows_what_the_class_lacks(detecting_predictor, real_clip):
    _, classes = detecting_predictor.classes(detecting_predictor.resolve_labels(LABELS))
    units = len(classes.unit_texts)
    own = classes.class_unit_mask[0]
    present = torch.where(own, 0.95, 0.02).expand(4, units)
    assert evidence.fit_score(evidence.ConceptMarks.from_frame_scores(present, "detector", 0.5), classes, 0) \
        == pytest.approx(0.95)
    extra = present.clone()
    extra[2, int((~own).nonzero()[0])] = 0.9  # something the class does not have shows in one frame
    assert evidence.fit_score(evidence.ConceptMarks.from_frame_scores(extra, "detector", 0.5), classes, 0) \
        == pytest.approx(0.1)


def test_the_contrast_folds_shared_concepts_away(full_predictor, real_clip):
    pred = full_predictor.predict(real_clip, labels=LABELS)
    kg, _ = full_predictor.classes(full_predictor.resolve_labels(LABELS))
    result = full_predictor.contrast(pred, "wave left hand" if pred.labels[0] != "Wave Left Hand" else "wave right hand",
                                     labels=LABELS)
    mine = {u for us in kg.units_of(pred.class_names[0]).values() for u in us}
    theirs = {u for us in kg.units_of(result.rival).values() for u in us}
    assert {e.text for e in result.own} == mine - theirs and {e.text for e in result.rival_own} == theirs - mine
    assert set(result.shared) == mine & theirs
    assert result.rival_maps is not None and result.rival_maps.shape[1] == len(result.rival_own)
    with pytest.raises(LabelError):
        full_predictor.contrast(pred, "tennis serve", labels=LABELS)


def test_a_detector_made_for_another_model_is_refused(make_full_predictor, tmp_path):
    from kgclip_core.errors import ConfigError
    from kgclip_core.predictor import PredictorConfig

    predictor = make_full_predictor()
    other = fit_detector(torch.randn(16, 10), (torch.rand(16, 2) < 0.5).float(), ["a", "b"])
    cfg = PredictorConfig(backbone=predictor.cfg.backbone, concept_detector=str(other.save(tmp_path / "c.safetensors")))
    with pytest.raises(ConfigError, match="another model"):
        Predictor(predictor.model, cfg)
