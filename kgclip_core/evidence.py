"""Which of the predicted class's own concepts the clip shows: the *Why this action* evidence.

Each concept the top class expects (its knowledge-graph entry) gets a score and a mark, shown or
not, against a bar that is relative, since the scores of different models and label sets are not
on one scale:

- a model with the KG triplet encoder is asked itself: its video-movement link (the link
  KG-CLIP's triple and direct losses train, from the frames the classifier reads) must be
  stronger than its link to every rival concept, those of its ``EVIDENCE_POOL`` likeliest classes
  that the top class lacks (at most ``EVIDENCE_POOL_UNITS`` concepts in all: two triplet passes
  per concept, about 1.4 ms each on a CPU for ViT-B/32's encoder; a Kinetics-400 class has about
  19 concepts);
- otherwise the concept's text must match the frames at least as well as ``EVIDENCE_QUANTILE``
  of all the label set's concepts do.

A quantile of the triplet pool put the bar inside the top class's own tight cluster of scores: on
the demo checkpoint's correct fresh clips, 47% of its concepts sat within a tenth of a standard
deviation of it, and a learner read "wave right hand" explained with "right hand wave ✗"
(docs/EXPLAIN.md). The plain cosine of a trained model's frames with concept texts can disagree
with its decision: on the demo checkpoint's 93 correct fresh clips it marked 69% of the top
action's concepts shown (none in 9 clips), the triplet score against its strongest rival 99%
(none in 0); of the other likely actions' own concepts 34% and 2%.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from kgclip_core.model.kgclip import ClassFeatures, KGClipModel, ScoreOutput
from kgclip_core.prediction import Evidence

EVIDENCE_QUANTILE = 0.75
EVIDENCE_POOL = 5
EVIDENCE_POOL_UNITS = 40


@dataclass
class EvidenceResult:
    """The top class's concepts as marked, best first, and what marked them."""

    items: list[Evidence] = field(default_factory=list)
    units: list[int] = field(default_factory=list)  # their unit indices, in ``items`` order
    threshold: float | None = None  # the bar a score must clear (see clears_bar)
    measure: str = "cosine"  # "cosine" or "triplet"
    # the model's triplet link from the clip to every concept of the evidence pool
    # ({unit index: score}; empty without the triplet encoder)
    links: dict[int, float] = field(default_factory=dict)


def evidence_pool(logits: torch.Tensor, class_units: torch.Tensor) -> torch.Tensor:
    """The concepts the triplet evidence is measured against: those of the likeliest classes
    (``logits`` [C], best first), up to ``EVIDENCE_POOL`` classes and ``EVIDENCE_POOL_UNITS``
    concepts, the top class's always all of them. Unit indices, sorted."""
    chosen: list[int] = []
    for rank, c in enumerate(logits.topk(min(EVIDENCE_POOL, len(logits))).indices.tolist()):
        new = [u for u in class_units[c].nonzero().flatten().tolist() if u not in chosen]
        if rank and len(chosen) + len(new) > EVIDENCE_POOL_UNITS:
            new = new[:max(EVIDENCE_POOL_UNITS - len(chosen), 0)]
        chosen += new
    return torch.tensor(sorted(chosen), dtype=torch.long, device=class_units.device)


def clears_bar(scores: torch.Tensor, bar: float, measure: str) -> torch.Tensor:
    """Which evidence scores count as shown: strictly above the strongest rival for the
    ``triplet`` measure ("more strongly than"), at least the quantile for the ``cosine``."""
    return scores > bar if measure == "triplet" else scores >= bar


def measure_evidence(model: KGClipModel, out: ScoreOutput, classes: ClassFeatures, top: int) -> EvidenceResult:
    """The concepts of class ``top``, scored against the clip (``out``, the model's scoring of
    it) and every frame, each marked shown or not (see the module docstring)."""
    result = EvidenceResult()
    if classes.unit_emb.shape[0] == 0:
        return result
    own = classes.class_unit_mask[top].nonzero().flatten()
    if out.su is not None:  # already computed: the best cosine over each frame's tokens
        cosines = out.su.frame_scores[0].float()
    else:
        cosines = F.normalize(out.frame_tokens[0], dim=-1).float() @ classes.unit_emb.T.float()  # [T, U]
    # Where in time each concept's text matches (the triplet encoder scores the whole clip).
    frame_scores = cosines[:, own]
    rival = None
    if model.triplet is not None:
        pool = evidence_pool(out.logits[0], classes.class_unit_mask)
        fwd, inv = model.triplet.pair_scores(out.video_emb[:1], "video-movement", classes.unit_emb[pool])
        linked = (0.5 * (fwd + inv))[0].float()
        result.links = dict(zip(pool.tolist(), linked.tolist()))
        rival = ~classes.class_unit_mask[top, pool]
    if rival is not None and bool(rival.any()):
        scores = torch.tensor([result.links[u] for u in own.tolist()])
        result.measure = "triplet"
        result.threshold = float(linked[rival].max())
    else:  # no triplet encoder, or no rival concept to measure its link against
        reference = cosines.mean(0)
        scores = reference[own]
        result.threshold = float(torch.quantile(reference, EVIDENCE_QUANTILE))
    shown = clears_bar(scores, result.threshold, result.measure)
    for i in sorted(range(len(own)), key=lambda i: -float(scores[i])):
        u = int(own[i])
        result.units.append(u)
        result.items.append(Evidence(
            text=classes.unit_texts[u], type=classes.unit_types[u], score=float(scores[i]),
            frame_scores=frame_scores[:, i].tolist(), best_frame=int(frame_scores[:, i].argmax()),
            present=bool(shown[i])))
    return result
