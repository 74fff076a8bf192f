"""Semantic-unit (SU) selection (ASU): which body parts, objects, scenes and motions a video shows.

Parameter-free. Each frame is represented by its CLS embedding and, with MRA on, its region
features; a unit's score in a frame is its best cosine over those visual tokens (a unit is
present when some region shows it). Per video, units are ranked by their mean score over
frames and the top k are kept; a softmax over the kept scores (semantic attention with a
temperature) says how much each selected unit counts for the decoder.
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


def select_units(
    visual: torch.Tensor, units: torch.Tensor, top_k: int, temperature: float
) -> SUSelection:
    """Score units against visual tokens and keep the top ``top_k`` per video.

    visual [B, T, V, D] (V tokens per frame: CLS and regions), units [U, D] with U >= 1.
    """
    sim = torch.einsum("btvd,ud->btvu", F.normalize(visual, dim=-1), F.normalize(units, dim=-1))
    frame_scores = sim.amax(dim=2)
    video_scores = frame_scores.mean(dim=1)
    k = min(top_k, units.shape[0])
    top, indices = video_scores.topk(k, dim=-1)
    weights = torch.softmax(top / temperature, dim=-1)
    return SUSelection(frame_scores, video_scores, indices, weights)
