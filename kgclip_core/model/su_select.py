"""Semantic-unit (SU) selection (ASU): which body parts, objects, scenes and motions a video shows.

Parameter-free. Each frame is represented by its CLS embedding and, with MRA on, its region
features; a unit's score in a frame is its best cosine over those visual tokens (a unit is
present when some region shows it). Per video, units are ranked by their mean score over
frames and the top k are kept; a softmax over the kept scores (semantic attention with a
temperature) says how much each selected unit counts for the decoder. With ``per_frame``
(ASU's own selection) every frame also keeps its own top k by its own scores, so a unit that
shows in a few frames only (a kick, a throw) is read where it happens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class SUSelection:
    """Scores of every unit and the units kept per video."""

    frame_scores: torch.Tensor  # [B, T, U] best cosine of each unit per frame
    video_scores: torch.Tensor  # [B, U] mean of frame_scores over frames
    indices: torch.Tensor  # [B, K] selected units, best first
    weights: torch.Tensor  # [B, K] semantic attention over the selected units (sums to 1)
    # [B, U] what the ranking used: video_scores less each unit's usual score (the hubness
    # correction); None when the ranking used video_scores themselves
    rank_scores: torch.Tensor | None = None
    frame_indices: torch.Tensor | None = None  # [B, T, K] per-frame selection (per_frame only)
    frame_weights: torch.Tensor | None = None  # [B, T, K] its attention, each frame sums to 1

    def item(self, index: int) -> SUSelection:
        """Video ``index`` of the batch alone, as a batch of one (every field is per video)."""
        one = slice(index, index + 1)
        cut = lambda x: None if x is None else x[one]  # noqa: E731
        return SUSelection(self.frame_scores[one], self.video_scores[one], self.indices[one], self.weights[one],
                           cut(self.rank_scores), cut(self.frame_indices), cut(self.frame_weights))

    def per_frame(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The units each frame reads and their weights, [B, T, K] each: its own selection
        when there is one, else the video's selection repeated over frames."""
        if self.frame_indices is not None:
            return self.frame_indices, self.frame_weights
        t = self.frame_scores.shape[1]
        expand = lambda x: x[:, None].expand(-1, t, -1)  # noqa: E731
        return expand(self.indices), expand(self.weights)


def select_units(
    visual: torch.Tensor, units: torch.Tensor, top_k: int, temperature: float, per_frame: bool = False,
    bias: torch.Tensor | None = None,
) -> SUSelection:
    """Score units against visual tokens and keep the top ``top_k`` per video (and, with
    ``per_frame``, per frame).

    visual [B, T, V, D] (V tokens per frame: CLS and regions), units [U, D] with U >= 1.
    ``bias`` [V, U] is subtracted from each token's cosine before ranking and weighting (the
    hubness correction, :mod:`kgclip_core.model.hubness`); the scores kept stay raw cosines.
    """
    sim = torch.einsum("btvd,ud->btvu", F.normalize(visual, dim=-1), F.normalize(units, dim=-1))
    frame_scores = sim.amax(dim=2)
    video_scores = frame_scores.mean(dim=1)
    frame_rank = frame_scores if bias is None else (sim - bias).amax(dim=2)
    rank_scores = None if bias is None else frame_rank.mean(dim=1)
    k = min(top_k, units.shape[0])
    top, indices = (video_scores if rank_scores is None else rank_scores).topk(k, dim=-1)
    weights = torch.softmax(top / temperature, dim=-1)
    selection = SUSelection(frame_scores, video_scores, indices, weights, rank_scores)
    if per_frame:
        top, selection.frame_indices = frame_rank.topk(k, dim=-1)
        selection.frame_weights = torch.softmax(top / temperature, dim=-1)
    return selection
