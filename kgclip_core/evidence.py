"""Which concepts the clip shows: the marks (✓/✗) of *Why this action*, decided from the clip alone.

Every concept of the label set gets a score from the clip and a mark, the same whichever class
won, so that a ✓ says "the clip shows this", not "this belongs to the predicted class":

- with a concept detector (``model.concept_detector``, shipped with the synthetic world's models):
  the calibrated probability that the clip shows the concept; ✓ from ``PRESENT_PROBABILITY``;
- without one (a pretrained CLIP, or a checkpoint trained without ground truth of concepts), a
  relative rule: the concept's text matches the frames at least as well as ``EVIDENCE_QUANTILE``
  of the label set's concepts do. It says "among the likeliest of these concepts", not "present".

The earlier rule of a model with the KG triplet encoder (its link to the concept against the
strongest rival concept of the likeliest other classes) depended on which classes won, and marked
61.5% of the predicted class's absent concepts ✓ on clips of unseen compositions
(docs/EXPLAIN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kgclip_core.model.concept_detector import ConceptDetector, concept_features
from kgclip_core.model.kgclip import ClassFeatures, ScoreOutput, VideoFeatures
from kgclip_core.prediction import Evidence

EVIDENCE_QUANTILE = 0.75
PRESENT_PROBABILITY = 0.5


@dataclass
class ConceptMarks:
    """Every concept of a label set (``ClassFeatures.unit_texts`` order) scored against one clip."""

    scores: torch.Tensor  # [U] the probability (detector) or the mean cosine with the frames
    present: torch.Tensor  # [U] bool: the mark
    frame_scores: torch.Tensor  # [T, U] the same score per frame: where in time each concept shows
    measure: str  # "detector" or "cosine"
    threshold: float  # the bar a score must reach to be marked shown

    @classmethod
    def from_frame_scores(cls, frame_scores: torch.Tensor, measure: str, threshold: float) -> ConceptMarks:
        """The marks again from their per-frame scores (as a Prediction keeps them): a detector's
        clip probability is its best frame's, a cosine is averaged over the frames."""
        scores = frame_scores.amax(0) if measure == "detector" else frame_scores.mean(0)
        return cls(scores, scores >= threshold, frame_scores, measure, threshold)


def mark_concepts(video: VideoFeatures, out: ScoreOutput, classes: ClassFeatures,
                  detector: ConceptDetector | None) -> ConceptMarks:
    """Score and mark every concept of ``classes`` against the clip (``video``, and ``out``, the
    model's scoring of it): by ``detector`` when it knows every concept, else by the relative rule."""
    if detector is not None and detector.covers(classes.unit_texts):
        probabilities = detector.probabilities(concept_features(video.frames[0], video.patches[0], video.grid))
        return ConceptMarks.from_frame_scores(probabilities[:, detector.index(classes.unit_texts)], "detector",
                                              PRESENT_PROBABILITY)
    if out.su is not None:  # already computed: the best cosine over each frame's tokens
        per_frame = out.su.frame_scores[0].float()
    else:
        per_frame = F.normalize(out.frame_tokens[0], dim=-1).float() @ classes.unit_emb.T.float()  # [T, U]
    threshold = float(torch.quantile(per_frame.mean(0), EVIDENCE_QUANTILE)) if per_frame.shape[1] else 0.0
    return ConceptMarks.from_frame_scores(per_frame, "cosine", threshold)


def concepts_of(classes: ClassFeatures, cls: int) -> list[int]:
    """The unit indices of class ``cls``'s own concepts (its knowledge-graph entry)."""
    return classes.class_unit_mask[cls].nonzero().flatten().tolist()


def evidence_items(marks: ConceptMarks, classes: ClassFeatures, units: list[int]) -> list[Evidence]:
    """``units`` as marked Evidence, best score first."""
    ordered = sorted(units, key=lambda u: -float(marks.scores[u]))
    return [Evidence(text=classes.unit_texts[u], type=classes.unit_types[u], score=float(marks.scores[u]),
                     frame_scores=marks.frame_scores[:, u].tolist(), best_frame=int(marks.frame_scores[:, u].argmax()),
                     present=bool(marks.present[u])) for u in ordered]


def fit_score(marks: ConceptMarks, classes: ClassFeatures, cls: int) -> float | None:
    """How well class ``cls`` accounts for what the clip shows, in [0, 1] (detector marks only):
    1 less the larger of two misfits, its least likely own concept's absence and the likeliest
    concept it does not have (the clip shows something the class does not explain). A novel
    combination of known movements ("wave right hand while squatting") read as its nearest class
    ("wave right hand") fits badly through the second; a clip unlike any class through both."""
    if marks.measure != "detector":
        return None
    own = classes.class_unit_mask[cls]
    missing = 1.0 - float(marks.scores[own].min()) if bool(own.any()) else 1.0
    extra = float(marks.scores[~own].max()) if bool((~own).any()) else 0.0
    return 1.0 - max(missing, extra)
