"""Integrated Gradients (captum) of a text's match with each frame, on the input pixels.

The explanations package attributes a class's logit with the same engine
(``explain.attribution``); here the number attributed is the cosine of each frame's embedding
with a text (a semantic unit, a class prompt), so that Integrated Gradients can be compared with
the other heatmap methods on the same question.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from kgclip_core.backbone import ClipBackbone
from kgclip_core.heatmaps.gradient import scale_to_peak


def integrated_gradients_of(forward: Callable[..., torch.Tensor]):
    """captum's IntegratedGradients on ``forward``. captum is imported here, on first use: its
    import takes over a second, and only the opt-in gradient explanations need it (not the
    first prediction after a cold start)."""
    from captum.attr import IntegratedGradients

    return IntegratedGradients(forward)


def text_integrated_gradients(backbone: ClipBackbone, images: torch.Tensor, texts: torch.Tensor,
                              steps: int = 16) -> torch.Tensor:
    """Integrated Gradients of each image's cosine with its text: images [N, 3, S, S], texts [N, D]
    -> maps [N, S, S] on the model's input pixels (absolute attribution summed over colour
    channels, each scaled to a maximum of 1). Baseline: the mean image (zeros after CLIP
    normalisation)."""
    texts = F.normalize(texts.float(), dim=-1)

    def cosine(x: torch.Tensor) -> torch.Tensor:
        # captum stacks the interpolation steps of every image: repeat the texts to match.
        cls, _ = backbone.encode_frames(x)
        return (F.normalize(cls, dim=-1) * texts.repeat(x.shape[0] // len(texts), 1)).sum(-1)

    with torch.enable_grad():
        attr = integrated_gradients_of(cosine).attribute(images.float(), baselines=torch.zeros_like(images.float()),
                                                         n_steps=steps)
    return scale_to_peak(attr.abs().sum(dim=1).detach())
