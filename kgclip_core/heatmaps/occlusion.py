"""Occlusion maps of a text on frames: how much the frame's match with the text drops when one
patch is hidden (Zeiler & Fergus, 2014, on the ViT's own patches).

A perturbation method: it asks the model itself, patch by patch, so it is faithful by
construction and serves as the reference the other methods are read against (if hiding the
named body part does not lower the score, no map of that model can honestly point at it). It
costs one forward pass per patch and frame, so it is opt-in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kgclip_core.backbone import ClipBackbone
from kgclip_core.heatmaps.gradient import scale_to_peak

BATCH = 256  # images per forward pass


@torch.no_grad()
def occlusion(backbone: ClipBackbone, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """Occlusion maps [N, h, w] of the texts [N, D] on the images [N, 3, S, S]: the drop of each
    image's cosine with its text when a patch is set to the mean colour, clipped at 0, scaled to a
    maximum of 1."""
    (gh, gw), n = backbone.grid_size, len(images)
    side = images.shape[-1] // gh
    masks = torch.ones(gh * gw, 1, gh, gw, device=images.device)
    masks.view(gh * gw, -1)[torch.arange(gh * gw), torch.arange(gh * gw)] = 0.0
    masks = masks.repeat_interleave(side, -2).repeat_interleave(side, -1)  # [P, 1, S, S]
    texts = F.normalize(texts.float(), dim=-1)

    def cosine(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.cat([(F.normalize(backbone.encode_frames(x[i:i + BATCH])[0], dim=-1) * t[i:i + BATCH]).sum(-1)
                          for i in range(0, len(x), BATCH)])

    full = cosine(images.float(), texts)  # [N]
    hidden = (images.float()[:, None] * masks[None]).flatten(0, 1)  # [N * P, 3, S, S]
    drop = full[:, None] - cosine(hidden, texts.repeat_interleave(gh * gw, dim=0)).reshape(n, gh * gw)
    return scale_to_peak(drop.clamp_min(0).reshape(n, gh, gw))
