"""The last layers of an open_clip ViT, run step by step so that explanations can read inside them.

open_clip's ``ResidualAttentionBlock`` calls ``nn.MultiheadAttention`` without returning its
attention probabilities, queries, keys or values. :func:`run_block` recomputes a block from the
same weights and exposes all of them (its output equals the block's own, tested); the heatmap
methods build on it:

- the training-free *attention-path* maps (ClearCLIP, SCLIP, MaskCLIP) replace the last block's
  query-key attention by a self-self one and keep only the attention branch (no residual, no
  feed-forward), then project the patch tokens into the joint space (:func:`attention_path_patches`);
- the gradient maps (LeGrad, Grad-ECLIP) differentiate a text score with respect to the
  attention probabilities or the attention output (``explain.gradient``).

:class:`LastBlockInput` records the last block's input during an ordinary forward pass, so an
attention-path map of a prediction costs one attention layer, not a second pass of the tower.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock
from torch import nn

from kgclip_core.errors import ConfigError

# The attention matrices run_block can use -> what each is, and the method that uses it
# (``qk`` is CLIP's own attention).
ATTENTION_KINDS = {
    "qk": "softmax(q k^T)",
    "qq": "softmax(q q^T) (ClearCLIP)",
    "qq+kk": "softmax(q q^T) + softmax(k k^T) (SCLIP)",
    "identity": "every token attends to itself only (MaskCLIP)",
}


@dataclass
class BlockOutput:
    """One block's output and the attention internals an explanation reads (batch first)."""

    out: torch.Tensor  # [B, N, width] the block's output
    probs: torch.Tensor  # [B, heads, N, N] attention probabilities
    q: torch.Tensor  # [B, heads, N, head_dim]
    k: torch.Tensor
    v: torch.Tensor
    mixed: torch.Tensor  # [B, N, width] attention output before the output projection


def blocks_of(visual: nn.Module) -> nn.ModuleList:
    """The residual blocks of an open_clip VisionTransformer; a ConfigError for other blocks."""
    blocks = visual.transformer.resblocks
    if not all(isinstance(b, ResidualAttentionBlock) and isinstance(b.attn, nn.MultiheadAttention) for b in blocks):
        raise ConfigError("Heatmap methods other than 'cosine' need open_clip's standard ViT blocks "
                          "(ResidualAttentionBlock with nn.MultiheadAttention).")
    return blocks


def _attention_probs(q: torch.Tensor, k: torch.Tensor, kind: str) -> torch.Tensor:
    scale = q.shape[-1] ** -0.5
    if kind == "qk":
        return torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1)
    if kind == "qq":
        return torch.softmax(q @ q.transpose(-1, -2) * scale, dim=-1)
    if kind == "qq+kk":
        return (torch.softmax(q @ q.transpose(-1, -2) * scale, dim=-1)
                + torch.softmax(k @ k.transpose(-1, -2) * scale, dim=-1))
    if kind == "identity":
        return torch.eye(q.shape[-2], dtype=q.dtype, device=q.device).expand(*q.shape[:-2], -1, -1)
    raise ValueError(f"attention kind must be one of {list(ATTENTION_KINDS)}, got {kind!r}")


def run_block(block: ResidualAttentionBlock, x: torch.Tensor, kind: str = "qk", residual: bool = True) -> BlockOutput:
    """One block on tokens ``x`` [B, N, width] (batch first, whatever the transformer's layout).

    ``kind`` chooses the attention matrix (:data:`ATTENTION_KINDS`); ``residual=False`` keeps the
    attention branch alone (no residual, no feed-forward), the attention-path methods' last layer.
    """
    attn = block.attn
    b, n, width = x.shape
    heads = attn.num_heads
    q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(b, n, heads, width // heads).transpose(1, 2) for t in (q, k, v))
    probs = _attention_probs(q, k, kind)
    mixed = (probs @ v).transpose(1, 2).reshape(b, n, width)
    attn_out = block.ls_1(attn.out_proj(mixed))
    if residual:
        out = x + attn_out
        out = out + block.ls_2(block.mlp(block.ln_2(out)))
    else:
        out = attn_out
    return BlockOutput(out=out, probs=probs, q=q, k=k, v=v, mixed=mixed)


def run_blocks(visual: nn.Module, x: torch.Tensor, blocks: list[nn.Module]) -> torch.Tensor:
    """Tokens [B, N, width] through open_clip's own ``blocks``, in the transformer's layout."""
    batch_first = getattr(visual.transformer, "batch_first", True)
    x = x if batch_first else x.transpose(0, 1)
    for block in blocks:
        x = block(x)
    return x if batch_first else x.transpose(0, 1)


def to_joint(visual: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Width-space tokens [..., width] -> the joint image-text space, as open_clip pools them."""
    return visual.ln_post(tokens) @ visual.proj


def attention_path_patches(visual: nn.Module, last_input: torch.Tensor, kind: str) -> torch.Tensor:
    """Patch tokens [B, P, D] in the joint space from the last block's input [B, N, width], with the
    last block's attention replaced by ``kind`` and its residual and feed-forward branches dropped."""
    block = blocks_of(visual)[-1]
    return to_joint(visual, run_block(block, last_input, kind, residual=False).out)[:, 1:]


class LastBlockInput:
    """Records the input of a ViT's last block during ordinary forward passes (a context manager).

    Only passes run by the thread that entered are recorded, so a concurrent prediction on the
    same model (the app's queue may run several) does not mix its frames into this one's.
    ``tokens`` holds the recorded inputs, batch first, concatenated in call order.
    """

    def __init__(self, visual: nn.Module) -> None:
        self._visual = visual
        self._parts: list[torch.Tensor] = []
        self._thread = threading.get_ident()
        self._handle = None

    def _record(self, module: nn.Module, args: tuple) -> None:
        if threading.get_ident() == self._thread:
            x = args[0]
            self._parts.append(x if getattr(self._visual.transformer, "batch_first", True) else x.transpose(0, 1))

    def __enter__(self) -> LastBlockInput:
        self._handle = blocks_of(self._visual)[-1].register_forward_pre_hook(self._record)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()

    @property
    def tokens(self) -> torch.Tensor:
        """The last block's inputs [B, N, width] recorded so far."""
        if not self._parts:
            raise RuntimeError("No forward pass of the image tower was recorded.")
        return torch.cat(self._parts).float()
