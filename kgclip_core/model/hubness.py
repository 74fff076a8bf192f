"""Hubness correction for semantic-unit selection: rank units by how much more a clip shows
them than clips usually do.

A few unit texts ("arm raise", "hand wave", "lift") sit close to most frames of a moving
figure, so a plain cosine ranking selects them whatever the action: on the demo checkpoint
two thirds of the selected units outside the true class were five such *hubs*
(docs/EXPLAIN.md). CSLS-style retrieval corrects a candidate's score by its mean similarity
to the queries; here the queries are visual tokens, and the mean cosine of a unit over them is
its dot product with their normalised tokens' mean, ``mean_v cos(v, u) = mean(v_hat) . u_hat``.
So one stored mean per token kind (a frame's CLS token, an MRA region token) corrects any
label set's units:

    rank(v, u) = cos(v, u) - beta * max(0, mean_kind(v_hat) . u_hat)

The means are data statistics, not learned weights: kept as running means while the model
trains (as batch norm keeps its statistics) and stored in the checkpoint, or measured exactly
over clips with :meth:`HubCorrection.calibrate`. The raw cosines stay the units' scores; only
the ranking and the selection's attention weights use the corrected ones. A unit that clips
usually match less than not at all (cosine below 0, such as "kick" for most clips of arm
actions) is not raised: lifted by its negative mean, such anti-hubs were selected with a raw
cosine of 0.11 beside units at 0.40, and on the demo checkpoint the clamp also selected more
of the true class (development split: 67.9% against 65.5% at strength 1).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

# Per training step, how far the running means move toward the batch's means.
MOMENTUM = 0.01


def token_means(visual: torch.Tensor) -> torch.Tensor:
    """Mean L2-normalised token of each kind: visual [B, T, V, D] (token 0 the frame's CLS,
    tokens 1.. its regions) -> [2, D]; the region row is zero when there are no regions."""
    v = F.normalize(visual.detach().float(), dim=-1)
    cls = v[:, :, 0].flatten(0, 1).mean(0)
    regions = v[:, :, 1:].flatten(0, 2).mean(0) if v.shape[2] > 1 else torch.zeros_like(cls)
    return torch.stack([cls, regions])


class HubCorrection(nn.Module):
    """The visual tokens' mean per kind, and the correction it makes to unit scores."""

    def __init__(self, dim: int, beta: float):
        super().__init__()
        self.beta = beta
        self.register_buffer("means", torch.zeros(2, dim))

    @torch.no_grad()
    def update(self, visual: torch.Tensor) -> None:
        """Move the running means toward this batch's (called while training)."""
        self.means.lerp_(token_means(visual).to(self.means.dtype), MOMENTUM)

    @torch.no_grad()
    def calibrate(self, visual_batches: Iterable[torch.Tensor]) -> int:
        """Set the means to the exact means over every token of ``visual_batches`` (each
        [B, T, V, D], as :func:`token_means` takes them); returns how many clips were read."""
        total, clips = None, 0
        for visual in visual_batches:
            n = visual.shape[0]
            part = token_means(visual) * n
            total = part if total is None else total + part
            clips += n
        if clips:
            self.means.copy_(total / clips)
        return clips

    def bias(self, units: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """What each visual token's cosine with each unit is lowered by for ranking: [V, U]
        for ``num_tokens`` tokens per frame (the CLS first, then regions); never below 0."""
        expected = (self.means.to(units.dtype) @ F.normalize(units, dim=-1).T).clamp_min(0)  # [2, U]
        kinds = torch.ones(num_tokens, dtype=torch.long, device=units.device)
        kinds[0] = 0
        return self.beta * expected[kinds]
