"""CLIP's text tower over texts that share a beginning, computing that beginning once.

Class prompts come from a handful of templates ("a video of a person {}."), so eight
templates x 101 classes share eight token prefixes that are half of every prompt. CLIP's
text tower is causal: a position sees only the positions before it, so the prefix's hidden
states are the same in every text that starts with it. This module runs each shared prefix
through the tower once, keeps its attention keys and values at every layer, and runs only
the rest of each text (the suffix), attending to those as well as to itself. The EOT
embeddings equal the plain pass's up to float rounding (tests/test_text_prefix.py); the
prompt half of a label set then costs about half as much (benchmarks/bench_app.py).

Only open_clip's built-in causal text tower qualifies (``supports_prefix_sharing``); other
towers (Hugging Face text encoders, bidirectional ones) take the plain path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# A prefix is shared (computed once) when at least MIN_GROUP texts start with it and it holds
# at least MIN_PREFIX tokens (the start token and three words, as the shortest templates'
# "a person is"): below either, the extra small batches cost more than the tokens they save
# (measured on UCF-101's texts: semantic units, 2-5 tokens long, ran slower shared).
MIN_GROUP = 16
MIN_PREFIX = 4


def supports_prefix_sharing(model: nn.Module) -> bool:
    """Whether ``model`` (an open_clip CLIP) has the causal text tower this module runs."""
    from open_clip.transformer import ResidualAttentionBlock

    transformer = getattr(model, "transformer", None)
    blocks = getattr(transformer, "resblocks", None)
    return (getattr(model, "attn_mask", None) is not None and blocks is not None
            and getattr(transformer, "batch_first", False)
            and all(type(b) is ResidualAttentionBlock and not hasattr(b, "ln_1_kv")
                    and b.attn.in_proj_weight is not None for b in blocks)
            and getattr(model, "text_pool_type", "argmax") == "argmax")


def prefix_groups(tokens: torch.Tensor, min_group: int = MIN_GROUP,
                  min_prefix: int = MIN_PREFIX) -> list[tuple[int, list[int]]]:
    """Texts (token ids [N, L], each ending in CLIP's EOT, the largest id) grouped by a shared
    prefix: ``(prefix length, text indices)``. Each text takes the longest prefix of at least
    ``min_prefix`` tokens, stopping before its EOT, that at least ``min_group`` texts take
    (a prefix that fewer take, because the others took longer ones, is dropped, longest
    first, and its texts choose again). Texts with none form one group of prefix length 0
    (nothing shared)."""
    eot = tokens.argmax(dim=-1).tolist()
    rows = tokens.tolist()

    def group(shared: Callable[[tuple[int, ...]], bool]) -> dict[tuple[int, ...], list[int]]:
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (row, e) in enumerate(zip(rows, eot)):
            p = next((p for p in range(e, min_prefix - 1, -1) if shared(tuple(row[:p]))), 0)
            groups.setdefault(tuple(row[:p]), []).append(i)
        return groups

    counts = Counter(tuple(row[:p]) for row, e in zip(rows, eot) for p in range(min_prefix, e + 1))
    allowed = {prefix for prefix, n in counts.items() if n >= min_group}
    while True:  # drop the longest prefixes too few texts took; their texts may fill shorter ones
        groups = group(allowed.__contains__)
        small = [prefix for prefix, idx in groups.items() if prefix and len(idx) < min_group]
        if not small:
            return [(len(prefix), idx) for prefix, idx in groups.items()]
        longest = max(map(len, small))
        allowed -= {prefix for prefix in small if len(prefix) == longest}


def _qkv(block: nn.Module, h: torch.Tensor) -> list[torch.Tensor]:
    """Queries, keys, values [n, heads, L, head_dim] of normed states ``h`` [n, L, D]."""
    attn = block.attn
    n, length, _ = h.shape
    qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)
    return [t.view(n, length, attn.num_heads, -1).transpose(1, 2) for t in qkv.chunk(3, dim=-1)]


def _block(block: nn.Module, x: torch.Tensor, prefix_kv: tuple[torch.Tensor, torch.Tensor] | None,
           mask: torch.Tensor) -> torch.Tensor:
    """One ResidualAttentionBlock on the suffix stream ``x`` [n, S, D] (open_clip's block,
    unrolled), its attention also reading the prefix's keys and values [1, heads, P, head_dim].
    Without a prefix it is open_clip's own block (and its fused attention)."""
    if prefix_kv is None:
        return block(x, attn_mask=mask)
    h = block.ln_1(x)
    q, k, v = _qkv(block, h)
    k = torch.cat([prefix_kv[0].expand(len(x), -1, -1, -1), k], dim=2)
    v = torch.cat([prefix_kv[1].expand(len(x), -1, -1, -1), v], dim=2)
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype))
    x = x + block.ls_1(block.attn.out_proj(a.transpose(1, 2).reshape(x.shape)))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _prefix_kv(model: nn.Module, prefix: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The prefix [P] through the tower: its attention keys and values at each layer."""
    p = len(prefix)
    x = (model.token_embedding(prefix) + model.positional_embedding[:p])[None]
    mask = model.attn_mask[:p, :p]
    kv = []
    for block in model.transformer.resblocks:
        _, k, v = _qkv(block, block.ln_1(x))
        kv.append((k, v))
        x = _block(block, x, None, mask)
    return kv


def encode_eot(model: nn.Module, tokens: torch.Tensor, batch_size: int,
               progress: Callable[[int], None] | None = None, min_group: int = MIN_GROUP) -> torch.Tensor:
    """EOT embeddings [N, D] of token ids [N, L] (on the model's device), each shared prefix
    computed once; suffixes in length-sorted batches of ``batch_size``. ``progress(n)``
    after each batch of ``n`` texts. Gradients flow as through the plain pass."""
    eot = tokens.argmax(dim=-1)
    out: list[torch.Tensor | None] = [None] * len(tokens)
    for p, idx in prefix_groups(tokens.cpu(), min_group):
        kv = _prefix_kv(model, tokens[idx[0], :p]) if p else None
        idx = sorted(idx, key=lambda i: int(eot[i]))  # similar lengths together: least padding
        for start in range(0, len(idx), batch_size):
            batch = idx[start:start + batch_size]
            ends = eot[batch] - p  # each EOT's position within the suffix
            s = int(ends.max()) + 1
            suffix = tokens[batch, p:p + s]
            x = model.token_embedding(suffix) + model.positional_embedding[p:p + s]
            # The suffix sees the whole prefix and, causally, itself.
            mask = model.attn_mask[p:p + s, :p + s]
            for layer, block in enumerate(model.transformer.resblocks):
                x = _block(block, x, kv[layer] if kv is not None else None, mask)
            x = model.ln_final(x[torch.arange(len(batch), device=x.device), ends]) @ model.text_projection
            for i, row in zip(batch, x):
                out[i] = row
            if progress is not None:
                progress(len(batch))
    return torch.stack(out)
