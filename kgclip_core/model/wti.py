"""Weighted token-wise interaction (WTI) between class word tokens and frame tokens.

From Zhou et al. (Connection Science 2024), on L2-normalised tokens::

    w_t = softmax(f_t(text tokens))   over the real words of a class
    w_v = softmax(f_v(frame tokens))  over the real frames of a video
    s_ij = <t_i, v_j>
    WTI = 1/2 (sum_i w_t,i max_j s_ij + sum_j w_v,j max_i s_ij)

Padding words and padded frames take no part: they get zero weight and are never the
maximum. The score is returned unscaled (in [-1, 1]); the scorer applies ``logit_scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class WTIOutput:
    """WTI scores and the pieces that explain them."""

    scores: torch.Tensor  # [B, C]
    similarity: torch.Tensor  # [B, C, L, T] word-to-frame cosine (0 where masked)
    word_weights: torch.Tensor  # [C, L] w_t (0 on padding)
    frame_weights: torch.Tensor  # [B, T] w_v (0 on padded frames)


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim restricted to ``mask``; rows without any real entry give 0."""
    logits = logits.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(logits, dim=-1)
    return torch.nan_to_num(weights, nan=0.0)


class WeightedTokenInteraction(nn.Module):
    """The two weight heads f_t, f_v and the WTI score."""

    def __init__(self, dim: int):
        super().__init__()
        self.text_weight = nn.Linear(dim, 1)
        self.frame_weight = nn.Linear(dim, 1)
        # Zero-init: uniform token weights at the start, i.e. plain mean of best matches.
        for layer in (self.text_weight, self.frame_weight):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self,
        words: torch.Tensor,
        word_mask: torch.Tensor,
        frames: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
    ) -> WTIOutput:
        """Score every video against every class.

        words [C, L, D] with word_mask [C, L] (True = real word); frames [B, T, D] with
        frame_mask [B, T] (True = real frame, default all real).
        """
        if frame_mask is None:
            frame_mask = torch.ones(frames.shape[:2], dtype=torch.bool, device=frames.device)
        w_t = masked_softmax(self.text_weight(words).squeeze(-1), word_mask)  # [C, L]
        w_v = masked_softmax(self.frame_weight(frames).squeeze(-1), frame_mask)  # [B, T]
        t = F.normalize(words, dim=-1)
        v = F.normalize(frames, dim=-1)
        sim = torch.einsum("cld,btd->bclt", t, v)  # [B, C, L, T]
        pair_mask = word_mask[None, :, :, None] & frame_mask[:, None, None, :]
        neg_inf = torch.finfo(sim.dtype).min
        # max over frames for each word, max over words for each frame, padding excluded
        word_best = sim.masked_fill(~pair_mask, neg_inf).amax(dim=3)  # [B, C, L]
        frame_best = sim.masked_fill(~pair_mask, neg_inf).amax(dim=2)  # [B, C, T]
        # a class without words (or a video without frames) has no pair: its terms are 0
        word_best = word_best.masked_fill(~pair_mask.any(dim=3), 0.0)
        frame_best = frame_best.masked_fill(~pair_mask.any(dim=2), 0.0)
        text_to_video = (w_t[None] * word_best).sum(-1)
        video_to_text = (w_v[:, None] * frame_best).sum(-1)
        scores = 0.5 * (text_to_video + video_to_text)
        return WTIOutput(scores, sim.masked_fill(~pair_mask, 0.0), w_t, w_v)
