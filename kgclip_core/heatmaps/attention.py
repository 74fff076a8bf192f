"""The last layers of an open_clip ViT, run step by step so that explanations can read inside them.

open_clip's ``ResidualAttentionBlock`` calls ``nn.MultiheadAttention`` without returning its
attention probabilities, queries, keys or values. :func:`run_block` recomputes a block from the
same weights and exposes all of them (its output equals the block's own, tested); the heatmap
methods build on it:

- the training-free *attention-path* maps (ClearCLIP, SCLIP, MaskCLIP) replace the last block's
  query-key attention by a self-self one and keep only the attention branch (no residual, no
  feed-forward), then project the patch tokens into the joint space (:func:`attention_path_patches`);
- the gradient maps (LeGrad, Grad-ECLIP) differentiate a text score with respect to the
  attention probabilities or the attention output (``heatmaps.gradient``).

:class:`LastBlockQKV` records the last block's queries, keys and values during an ordinary
forward pass, so an attention-path map of a prediction costs one attention product and the
output projection, not a second pass of the tower nor the block's input projection again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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


def _heads(block: ResidualAttentionBlock, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The block's queries, keys and values [B, heads, N, head_dim] of its normed input ``x`` [B, N, width]."""
    attn = block.attn
    b, n, width = x.shape
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    return tuple(t.reshape(b, n, attn.num_heads, width // attn.num_heads).transpose(1, 2) for t in qkv)


def _merge(t: torch.Tensor) -> torch.Tensor:
    """[B, heads, N, head_dim] -> [B, N, width]."""
    b, heads, n, head_dim = t.shape
    return t.transpose(1, 2).reshape(b, n, heads * head_dim)


def _attention_branch(block: ResidualAttentionBlock, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The block's attention branch with attention ``kind``: (probabilities, mixed values, branch output)."""
    probs = _attention_probs(q, k, kind)
    mixed = _merge(probs @ v)
    return probs, mixed, block.ls_1(block.attn.out_proj(mixed))


def run_block(block: ResidualAttentionBlock, x: torch.Tensor, kind: str = "qk", residual: bool = True) -> BlockOutput:
    """One block on tokens ``x`` [B, N, width] (batch first, whatever the transformer's layout).

    ``kind`` chooses the attention matrix (:data:`ATTENTION_KINDS`); ``residual=False`` keeps the
    attention branch alone (no residual, no feed-forward), the attention-path methods' last layer.
    """
    q, k, v = _heads(block, block.ln_1(x))
    probs, mixed, attn_out = _attention_branch(block, q, k, v, kind)
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


def attention_path_patches(visual: nn.Module, qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                           kind: str) -> torch.Tensor:
    """Patch tokens [B, P, D] in the joint space from the last block's queries, keys and values
    [B, heads, N, head_dim] (:attr:`LastBlockQKV.qkv`), with its attention replaced by ``kind``
    and its residual and feed-forward branches dropped."""
    _, _, attn_out = _attention_branch(blocks_of(visual)[-1], *qkv, kind)
    return to_joint(visual, attn_out)[:, 1:]


# Which recorder, if any, each thread has open on each block: {block: LastBlockQKV}.
_OPEN = threading.local()
_INSTALL_LOCK = threading.Lock()


class LastBlockQKV:
    """Records the queries, keys and values of a ViT's last block during ordinary forward passes
    (a context manager).

    ``nn.MultiheadAttention`` computes them inside one fused kernel and keeps none, so while a
    recorder is open the block's ``attention`` step runs as the same products written out
    (``_recording_attention``): its output equals the fused kernel's up to float rounding
    (tests/test_heatmaps.py). Only passes run by the thread that entered are recorded,
    so a concurrent prediction on the same model (the app's queue may run several) does not mix
    its frames into this one's; other threads' passes keep the fused kernel. ``qkv`` holds the
    recorded tensors, batch first, concatenated in call order.
    """

    def __init__(self, visual: nn.Module) -> None:
        self._block = blocks_of(visual)[-1]
        self._parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._outer: LastBlockQKV | None = None

    def __enter__(self) -> LastBlockQKV:
        with _INSTALL_LOCK:  # one wrapper per block, there while any thread records on it
            if "attention" not in vars(self._block):
                self._block.attention = _recording_attention(self._block, self._block.attention)
            self._block._kgclip_recorders = getattr(self._block, "_kgclip_recorders", 0) + 1
        opened = _open_recorders()
        self._outer = opened.get(self._block)
        opened[self._block] = self
        return self

    def __exit__(self, *exc) -> None:
        opened = _open_recorders()
        if self._outer is None:
            opened.pop(self._block, None)
        else:
            opened[self._block] = self._outer
        with _INSTALL_LOCK:
            self._block._kgclip_recorders -= 1
            if not self._block._kgclip_recorders:  # the block is open_clip's own again
                del self._block.attention, self._block._kgclip_recorders

    def record(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Keep one pass's queries, keys and values (called by the block's attention step)."""
        self._parts.append((q, k, v))

    @property
    def qkv(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The recorded queries, keys and values, each [B, heads, N, head_dim] in float32."""
        if not self._parts:
            raise RuntimeError("No forward pass of the image tower was recorded.")
        return tuple(torch.cat(parts).float() for parts in zip(*self._parts))


def _open_recorders() -> dict[nn.Module, LastBlockQKV]:
    if not hasattr(_OPEN, "recorders"):
        _OPEN.recorders = {}
    return _OPEN.recorders


def _recording_attention(block: ResidualAttentionBlock, fused: Callable) -> Callable:
    """``block.attention`` that, for a thread with a recorder open on ``block``, computes the
    attention from explicit queries, keys and values and hands them to the recorder."""
    batch_first = block.attn.batch_first

    def attention(q_x: torch.Tensor, k_x: torch.Tensor | None = None, v_x: torch.Tensor | None = None,
                  attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        recorder = _open_recorders().get(block)
        if recorder is None or k_x is not None or v_x is not None:
            return fused(q_x, k_x, v_x, attn_mask)
        x = q_x if batch_first else q_x.transpose(0, 1)
        q, k, v = _heads(block, x)
        recorder.record(q, k, v)
        mask = attn_mask.to(q.dtype) if attn_mask is not None else None
        out = block.attn.out_proj(_merge(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))
        return out if batch_first else out.transpose(0, 1)

    return attention
