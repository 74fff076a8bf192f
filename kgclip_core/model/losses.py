"""Training losses, returned as a dict of named terms plus ``"total"`` so training logs each.

- ``classification``: cross-entropy with label smoothing on the combined logits (the
  video-text, WTI and triplet terms that are on).
- ``triplet_video_action``: KG-CLIP's triple contrast over classes, forward and inverse
  relation each as its own cross-entropy.
- ``triplet_video_movement``: the video against every semantic unit; the units of the
  video's class are the (equally weighted) positives.
- ``triplet_edges``: the label set's KG edges (e.g. action-movement) contrasted in-batch
  as in KG-CLIP: the head representation of edge i against the tail representation of j.
  Targets (``edge_targets``): "hard", only j = i is a positive; "soft" (KG-CLIP), every j
  for which (head i, relation, tail j) is itself an edge of the graph is one, uniformly.
- ``direct`` (``direct_loss_weight`` > 0, KG-CLIP's ``lam_coef``): the same three contrasts
  on the plain embeddings, without the triplet encoder: video against classes, video
  against units, and the edges' heads against their tails.
- ``su_alignment`` (optional): the video's unit scores put the class's units first, which
  teaches MRA where the units are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kgclip_core.model.kgclip import ClassFeatures, KGClipModel, ScoreOutput
from kgclip_core.model.triplet import RELATIONS


def soft_cross_entropy(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a uniform target over ``positives`` [N, M]; rows without any are skipped."""
    keep = positives.any(dim=1)
    if not keep.any():
        return logits.new_zeros(())
    target = positives[keep].float()
    target = target / target.sum(dim=1, keepdim=True)
    return -(target * F.log_softmax(logits[keep], dim=1)).sum(dim=1).mean()


def edge_positives(triples: list[tuple[str, str, str]], soft: bool) -> torch.Tensor:
    """[E, E] bool: is tail j a right answer for head i? Hard: only j = i. Soft: whenever
    (head i, relation i, tail j) is itself one of ``triples`` (edges sharing a head or a tail
    are then not pushed apart). Its transpose answers the tails-to-heads contrast."""
    n = len(triples)
    if not soft:
        return torch.eye(n, dtype=torch.bool)
    edges = set(triples)
    return torch.tensor([[(h, r, t2) in edges and r == r2 for (_, r2, t2) in triples] for (h, r, _) in triples])


def edge_contrast(model: KGClipModel, classes: ClassFeatures, scale: torch.Tensor) -> torch.Tensor:
    """In-batch contrast of the KG edges (heads vs tails), forward and inverse relations."""
    heads, tails, rels = classes.triple_heads, classes.triple_tails, classes.triple_relations
    positives = edge_positives(classes.triples, model.cfg.edge_targets == "soft").to(heads.device)
    loss = heads.new_zeros(())
    for h_in, t_in, r in ((heads, tails, rels), (tails, heads, rels + len(RELATIONS))):
        h, t = model.triplet.encode(h_in, r, t_in)
        loss = loss + 0.5 * symmetric_contrast(scale * F.normalize(h, dim=-1) @ F.normalize(t, dim=-1).T, positives)
    return loss


def symmetric_contrast(sim: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Mean of the row-wise and column-wise soft cross-entropies of a square ``sim`` [N, N]."""
    return 0.5 * (soft_cross_entropy(sim, positives) + soft_cross_entropy(sim.T, positives.T))


def direct_contrast(
    out: ScoreOutput, classes: ClassFeatures, labels: torch.Tensor, soft_edges: bool
) -> torch.Tensor:
    """KG-CLIP's ``lam_coef`` terms: plain-cosine contrasts of video-action, video-movement and
    action-movement, averaged over those the label set has (video-action always)."""
    scale, video = out.logit_scale, F.normalize(out.video_emb, dim=-1)
    terms = [F.cross_entropy(scale * video @ classes.class_emb.T, labels)]
    positives = classes.class_unit_mask[labels]
    if positives.any():
        terms.append(soft_cross_entropy(scale * video @ classes.unit_emb.T, positives))
    if classes.triple_heads is not None and classes.triple_heads.shape[0] > 1:
        sim = scale * classes.triple_heads @ classes.triple_tails.T  # both ends are L2-normalised
        terms.append(symmetric_contrast(sim, edge_positives(classes.triples, soft_edges).to(sim.device)))
    return torch.stack(terms).mean()


def compute_losses(
    model: KGClipModel, out: ScoreOutput, classes: ClassFeatures, labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """All loss terms that the model's config switches on, and their weighted ``total``."""
    cfg = model.cfg
    scale = out.logit_scale
    losses = {"classification": F.cross_entropy(out.logits, labels, label_smoothing=cfg.label_smoothing)}
    triplet_terms = []
    if out.triplet_directions is not None:
        fwd, inv = out.triplet_directions
        losses["triplet_video_action"] = 0.5 * (
            F.cross_entropy(scale * fwd, labels, label_smoothing=cfg.label_smoothing)
            + F.cross_entropy(scale * inv, labels, label_smoothing=cfg.label_smoothing)
        )
        triplet_terms.append("triplet_video_action")
        positives = classes.class_unit_mask[labels]
        if positives.any():
            vf, vi = model.triplet.pair_scores(out.video_emb, "video-movement", classes.unit_emb)
            losses["triplet_video_movement"] = 0.5 * (
                soft_cross_entropy(scale * vf, positives) + soft_cross_entropy(scale * vi, positives)
            )
            triplet_terms.append("triplet_video_movement")
        if classes.triple_heads is not None and classes.triple_heads.shape[0] > 1:
            losses["triplet_edges"] = edge_contrast(model, classes, scale)
            triplet_terms.append("triplet_edges")
    total = losses["classification"] + cfg.triplet_loss_weight * sum(losses[k] for k in triplet_terms)
    if cfg.direct_loss_weight > 0:
        losses["direct"] = direct_contrast(out, classes, labels, cfg.edge_targets == "soft")
        total = total + cfg.direct_loss_weight * losses["direct"]
    if cfg.su_loss_weight > 0 and out.su is not None:
        unit_logits = out.su.video_scores / cfg.su_temperature
        losses["su_alignment"] = soft_cross_entropy(unit_logits, classes.class_unit_mask[labels])
        total = total + cfg.su_loss_weight * losses["su_alignment"]
    losses["total"] = total
    return losses
