"""Gradient maps of a text on frames: LeGrad and Grad-ECLIP, on any open_clip ViT.

Both explain one number per frame, the cosine of the frame's embedding with a text embedding,
and need a backward pass (so they are opt-in where a prediction must stay cheap):

- **LeGrad** (Bousselham et al., 2024; after the authors' open_clip wrapper): for each of the
  last ``layers`` blocks, the tokens after that block are mean-pooled (class token included),
  projected into the joint space and scored against the text; the gradient of that score with
  respect to the block's attention probabilities is clipped at 0 and averaged over heads and
  query rows, which leaves one value per key token. The patch tokens' values, summed over the
  layers, are the map.
- **Grad-ECLIP** (Zhao et al., ICML 2024; after the authors' code): in the last block, the
  gradient of the score with respect to the class token's attention output (before the output
  projection) weights each channel of every patch's value vector; each patch is further weighted
  by the cosine of the class token's query with the patch's key (min-max scaled over the
  patches), and the sum over channels, clipped at 0, is the map.

Texts are given per image: ``texts`` [N, D] holds the text embedding each image is scored against.
Maps come back on the patch grid [N, h, w], each scaled to a maximum of 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kgclip_core.backbone import ClipBackbone
from kgclip_core.heatmaps.attention import blocks_of, run_block, run_blocks, to_joint

LEGRAD_LAYERS = 2  # the authors' default for open_clip ViTs (layer_index=-2)


def scale_to_peak(maps: torch.Tensor) -> torch.Tensor:
    """Maps [N, h, w] scaled to a maximum of 1 each (an all-zero map stays zero)."""
    return maps / maps.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]


def _score(backbone: ClipBackbone, tokens: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """Sum over images of the cosine of pooled width-space tokens [N, width] with texts [N, D]."""
    emb = F.normalize(to_joint(backbone.model.visual, tokens), dim=-1)
    return (emb * F.normalize(texts.float(), dim=-1)).sum()


def _prefix(backbone: ClipBackbone, images: torch.Tensor, stop: int) -> torch.Tensor:
    """Tokens [N, tokens, width] after the first ``stop`` blocks, without a graph; then tracked."""
    visual = backbone.model.visual
    with torch.no_grad():
        x = run_blocks(visual, visual._embeds(images.float()), list(blocks_of(visual)[:stop]))
    return x.float().requires_grad_(True)


def legrad(backbone: ClipBackbone, images: torch.Tensor, texts: torch.Tensor,
           layers: int = LEGRAD_LAYERS) -> torch.Tensor:
    """LeGrad maps [N, h, w] of the texts [N, D] on the images [N, 3, S, S]."""
    blocks = blocks_of(backbone.model.visual)
    start = len(blocks) - min(layers, len(blocks))
    with torch.enable_grad():
        x = _prefix(backbone, images, start)
        steps = []
        for block in blocks[start:]:
            step = run_block(block, x)
            x = step.out
            steps.append(step)
        relevance = 0.0
        for step in steps:
            grad = torch.autograd.grad(_score(backbone, step.out.mean(dim=1), texts), step.probs, retain_graph=True)[0]
            relevance = relevance + grad.clamp_min(0).mean(dim=(1, 2))[:, 1:].detach()
    return scale_to_peak(relevance.reshape(len(images), *backbone.grid_size))


def grad_eclip(backbone: ClipBackbone, images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """Grad-ECLIP maps [N, h, w] of the texts [N, D] on the images [N, 3, S, S]."""
    blocks = blocks_of(backbone.model.visual)
    with torch.enable_grad():
        step = run_block(blocks[-1], _prefix(backbone, images, len(blocks) - 1))
        grad = torch.autograd.grad(_score(backbone, step.out[:, 0], texts), step.mixed)[0][:, 0]  # [N, width]
    n, heads, tokens, head_dim = step.v.shape
    q_cls = step.q[:, :, 0].reshape(n, 1, -1)  # heads concatenated, as the attention output's channels
    keys = step.k[:, :, 1:].transpose(1, 2).reshape(n, tokens - 1, -1)
    values = step.v[:, :, 1:].transpose(1, 2).reshape(n, tokens - 1, -1)
    spatial = F.cosine_similarity(q_cls, keys, dim=-1)  # [N, P]
    low, high = spatial.amin(dim=1, keepdim=True), spatial.amax(dim=1, keepdim=True)
    spatial = (spatial - low) / (high - low).clamp_min(1e-12)
    relevance = F.relu((grad[:, None] * values).sum(-1) * spatial).detach()
    return scale_to_peak(relevance.reshape(n, *backbone.grid_size))
