"""Training losses, returned as a dict of named terms plus ``"total"`` so training logs each.

- ``classification``: cross-entropy with label smoothing on the combined logits (the
  video-text, WTI and triplet terms that are on).
- ``triplet_video_action``: KG-CLIP's triple contrast over classes, forward and inverse
  relation each as its own cross-entropy.
- ``triplet_video_movement``: the video against every semantic unit; the units of the
  video's class are the (equally weighted) positives.
- ``triplet_edges``: the label set's KG edges (e.g. action-movement) contrasted in-batch
  as in KG-CLIP: the head representation of edge i against the tail representation of j.
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


def edge_contrast(model: KGClipModel, classes: ClassFeatures, scale: torch.Tensor) -> torch.Tensor:
    """In-batch contrast of the KG edges (heads vs tails), forward and inverse relations."""
    heads, tails, rels = classes.triple_heads, classes.triple_tails, classes.triple_relations
    target = torch.arange(heads.shape[0], device=heads.device)
    loss = heads.new_zeros(())
    for h_in, t_in, r in ((heads, tails, rels), (tails, heads, rels + len(RELATIONS))):
        h, t = model.triplet.encode(h_in, r, t_in)
        sim = scale * F.normalize(h, dim=-1) @ F.normalize(t, dim=-1).T
        loss = loss + 0.25 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.T, target))
    return loss


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
    if cfg.su_loss_weight > 0 and out.su is not None:
        unit_logits = out.su.video_scores / cfg.su_temperature
        losses["su_alignment"] = soft_cross_entropy(unit_logits, classes.class_unit_mask[labels])
        total = total + cfg.su_loss_weight * losses["su_alignment"]
    losses["total"] = total
    return losses
