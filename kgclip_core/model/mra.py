"""Multi-region attention (MRA, from ASU): R region queries attend over a frame's patches.

Every region has its own learned query and its own spatial prior, a 2-D Gaussian over the
patch grid (learned centre and width) added to the attention logits; the projections are
shared by all regions, as in ASU where one MRA module serves four regions. Centres start
spread over the frame (the four quadrants for R=4) so regions begin on different areas.

Region features stay in the joint image-text space: the value is the patch token itself
plus a zero-initialised projection, so at initialisation a region feature is exactly a
weighted mean of projected patch tokens and its cosine with a text embedding is meaningful.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def initial_centres(num_regions: int) -> torch.Tensor:
    """Region centres in [-1, 1]^2 spread on a near-square grid: [R, 2] as (x, y)."""
    cols = math.ceil(math.sqrt(num_regions))
    rows = math.ceil(num_regions / cols)
    if num_regions == 1:
        return torch.zeros(1, 2)
    xs = torch.linspace(-0.5, 0.5, cols) if cols > 1 else torch.zeros(1)
    ys = torch.linspace(-0.5, 0.5, rows) if rows > 1 else torch.zeros(1)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2).flip(-1)
    return grid[:num_regions].clone()


def grid_coordinates(grid: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Patch-centre coordinates in [-1, 1]^2, row-major over the grid: [P, 2] as (x, y)."""
    h, w = grid
    ys = (torch.arange(h, device=device) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=device) + 0.5) / w * 2 - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], dim=-1).reshape(-1, 2)


class MultiRegionAttention(nn.Module):
    """R region queries with Gaussian spatial priors over the patch tokens of each frame."""

    def __init__(self, dim: int, num_regions: int, prior_sigma: float = 0.5):
        super().__init__()
        self.num_regions = num_regions
        self.region_queries = nn.Parameter(torch.randn(num_regions, dim) * dim**-0.5)
        self.centres = nn.Parameter(initial_centres(num_regions))
        self.log_sigma = nn.Parameter(torch.full((num_regions,), math.log(prior_sigma)))
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def spatial_prior(self, grid: tuple[int, int], device: torch.device) -> torch.Tensor:
        """Log of the unnormalised Gaussian prior per region over the patches: [R, P]."""
        coords = grid_coordinates(grid, device)
        dist2 = ((coords[None] - self.centres[:, None]) ** 2).sum(-1)
        return -dist2 / (2 * torch.exp(2 * self.log_sigma)[:, None])

    def forward(
        self, cls: torch.Tensor, patches: torch.Tensor, grid: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """cls [N, D], patches [N, P, D] -> region features [N, R, D], maps [N, R, H', W'].

        The frame's CLS embedding conditions the queries so the same region query can look
        for different content in different frames.
        """
        n, p, d = patches.shape
        if grid[0] * grid[1] != p:
            raise ValueError(f"grid {grid} does not match {p} patch tokens")
        queries = self.query(self.norm(cls[:, None] + self.region_queries[None]))  # [N, R, D]
        keys = self.key(self.norm(patches))  # [N, P, D]
        logits = queries @ keys.transpose(1, 2) / math.sqrt(d)  # [N, R, P]
        attn = torch.softmax(logits + self.spatial_prior(grid, patches.device)[None], dim=-1)
        pooled = attn @ patches  # [N, R, D]
        regions = pooled + self.out(pooled)
        return regions, attn.reshape(n, self.num_regions, *grid)
