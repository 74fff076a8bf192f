"""Cross-modal video decoder (ASU): frame and region tokens read the selected semantic units.

Each layer has three pre-norm residual branches over tokens ``x [B, T, V, D]`` (V = the frame
token plus R region tokens):

1. attention: the tokens of a frame attend to each other and to the frame's selected SU
   embeddings (the video's selection, or the frame's own with per-frame selection) in one
   softmax, the SUs weighted by their selection weights (a log-weight bias), so region
   evidence reaches the frame token and the units inform both;
2. temporal modelling: a depthwise 1-D convolution over frames, per token stream;
3. an MLP.

The last projection of every branch starts at zero, so an untrained decoder returns its
input and the video embedding (mean over frames of the frame token) equals the mean-pooled
CLIP frame embedding: fine-tuning starts from pretrained CLIP, not from noise.
"""

from __future__ import annotations

import torch
from torch import nn


class DecoderLayer(nn.Module):
    """Attention to the frame's tokens and the selected SUs, temporal conv, MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, kernel: int):
        super().__init__()
        self.heads = heads
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_time = nn.LayerNorm(dim)
        self.temporal = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        for last in (self.attn.out_proj, self.temporal, self.mlp[-1]):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(
        self, x: torch.Tensor, units: torch.Tensor | None, unit_weights: torch.Tensor | None
    ) -> torch.Tensor:
        """x [B, T, V, D]; each frame's units [B, T, K, D] and unit_weights [B, T, K], or None
        for no SUs."""
        b, t, v, d = x.shape
        q = self.norm_attn(x.reshape(b * t, v, d))
        kv, bias = q, None
        if units is not None:
            k = units.shape[2]
            kv = torch.cat([q, self.norm_attn(units.reshape(b * t, k, d))], dim=1)
            unit_bias = torch.log(unit_weights.clamp_min(1e-6))[:, :, None, None, :]
            bias = torch.cat([x.new_zeros(b, t, 1, 1, v), unit_bias], dim=-1)
            bias = bias.expand(b, t, self.heads, v, v + k).reshape(b * t * self.heads, v, v + k)
        attended, _ = self.attn(q, kv, kv, attn_mask=bias, need_weights=False)
        x = x + attended.reshape(b, t, v, d)
        # temporal conv over frames for each of the V token streams
        streams = self.norm_time(x).permute(0, 2, 3, 1).reshape(b * v, d, t)
        x = x + self.temporal(streams).reshape(b, v, d, t).permute(0, 3, 1, 2)
        return x + self.mlp(self.norm_mlp(x))


class VideoDecoder(nn.Module):
    """Stacked decoder layers; the video embedding is the mean of the decoded frame tokens."""

    def __init__(self, dim: int, layers: int, heads: int, mlp_ratio: float, kernel: int):
        super().__init__()
        self.layers = nn.ModuleList(
            DecoderLayer(dim, heads, mlp_ratio, kernel) for _ in range(layers)
        )

    def forward(
        self,
        frames: torch.Tensor,
        regions: torch.Tensor | None = None,
        units: torch.Tensor | None = None,
        unit_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """frames [B, T, D], regions [B, T, R, D] -> decoded frame tokens [B, T, D].

        ``units`` [B, K, D] with ``unit_weights`` [B, K] are read by every frame; [B, T, K, D]
        with [B, T, K] give each frame its own (per-frame selection).
        """
        if units is not None and units.dim() == 3:
            t = frames.shape[1]
            units = units[:, None].expand(-1, t, -1, -1)
            unit_weights = unit_weights[:, None].expand(-1, t, -1)
        x = frames[:, :, None]
        if regions is not None:
            x = torch.cat([x, regions], dim=2)
        for layer in self.layers:
            x = layer(x, units, unit_weights)
        return x[:, :, 0]
