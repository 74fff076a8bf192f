"""CLIP's text tower over texts that share a beginning, computing that beginning once.

Class prompts come from a handful of templates ("a video of a person {}."), so eight
templates x 101 classes share eight token prefixes that are half of every prompt. CLIP's
text tower is causal: a position sees only the positions before it, so the prefix's hidden
states are the same in every text that starts with it. This module runs each shared prefix
through the tower once, keeps its attention keys and values at every layer, and runs only
the rest of each text (the suffix), attending to those as well as to itself. Texts that share
no longer prefix (semantic units, "right hand wave") still share the start token.

The suffixes of a batch run as one stream of their real tokens, without padding: norms,
projections and the MLP act per token, and only attention sees a padded layout. The EOT
embeddings equal the plain pass's up to float rounding (tests/test_text_prefix.py); a label
set's texts cost about half the plain trimmed pass (benchmarks/bench_app.py).

Only open_clip's built-in causal text tower qualifies (``supports_prefix_sharing``); other
towers (Hugging Face text encoders, bidirectional ones) take the plain path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# A prefix is shared (computed once) when at least MIN_GROUP texts start with it and it holds
# at least MIN_PREFIX tokens (the start token and three words, as the shortest templates'
# "a person is"): below either, the extra small batches cost more than the tokens they save
# (measured on UCF-101's texts: semantic units, 2-5 tokens long, ran slower shared). Those
# texts share the start token alone, in one group.
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


@dataclass(frozen=True)
class _Packing:
    """Where the real tokens of ``n`` texts (suffixes of lengths up to ``s``) sit in the padded
    [n, s] layout: ``pos`` [N], row-major, so each text's tokens are contiguous, in order."""

    n: int
    s: int
    pos: torch.Tensor

    def pad(self, flat: torch.Tensor) -> torch.Tensor:
        """[N, C] -> [n, s, C], zeros after each text's end."""
        out = flat.new_zeros(self.n * self.s, flat.shape[-1]).index_copy(0, self.pos, flat)
        return out.view(self.n, self.s, -1)

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """[n, s, C] -> [N, C]."""
        return padded.reshape(self.n * self.s, -1).index_select(0, self.pos)


def _block(block: nn.Module, x: torch.Tensor, packing: _Packing, prefix_kv: tuple[torch.Tensor, torch.Tensor],
           mask: torch.Tensor) -> torch.Tensor:
    """One ResidualAttentionBlock (open_clip's, unrolled) on the real tokens ``x`` [N, D] of
    ``packing``'s texts. Norms, projections and the MLP act per token, so they run on the real
    tokens alone; only attention, which mixes a text's tokens, sees the padded layout, and also
    reads the prefix's keys and values [1, heads, P, head_dim]."""
    attn = block.attn
    n, s = packing.n, packing.s
    qkv = packing.pad(F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias))  # [n, s, 3D]
    q, k, v = [t.view(n, s, attn.num_heads, -1).transpose(1, 2) for t in qkv.chunk(3, dim=-1)]
    k = torch.cat([prefix_kv[0].expand(n, -1, -1, -1), k], dim=2)
    v = torch.cat([prefix_kv[1].expand(n, -1, -1, -1), v], dim=2)
    a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype))
    x = x + block.ls_1(attn.out_proj(packing.unpad(a.transpose(1, 2))))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _prefix_kv(model: nn.Module, prefixes: list[torch.Tensor]) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Each prefix [P] through the tower: its attention keys and values at each layer
    (``[prefix][layer] = (k, v)``, each [1, heads, P, head_dim]). One batch for all, padded at
    the end (the causal mask keeps padding from any earlier position): a prefix is a few
    tokens, so each pass alone would mostly read the weights."""
    length = max(len(p) for p in prefixes)
    tokens = torch.stack([F.pad(p, (0, length - len(p))) for p in prefixes])
    x = model.token_embedding(tokens) + model.positional_embedding[:length]
    mask = model.attn_mask[:length, :length]
    kv: list[tuple[torch.Tensor, torch.Tensor]] = []
    for block in model.transformer.resblocks:
        _, k, v = _qkv(block, block.ln_1(x))
        kv.append((k, v))
        x = block(x, attn_mask=mask)
    return [[(k[g:g + 1, :, :len(p)], v[g:g + 1, :, :len(p)]) for k, v in kv] for g, p in enumerate(prefixes)]


def encode_eot(model: nn.Module, tokens: torch.Tensor, batch_size: int,
               progress: Callable[[int], None] | None = None, min_group: int = MIN_GROUP) -> torch.Tensor:
    """EOT embeddings [N, D] of token ids [N, L] (on the model's device), each shared prefix
    computed once; suffixes in length-sorted batches of ``batch_size`` texts, without padding
    (a batch's tokens run as one [tokens, D] stream: prompts of one template differ in length
    by several tokens, and padding them was a third of the work). ``progress(n)`` after each
    batch of ``n`` texts. Gradients flow as through the plain pass."""
    eot = tokens.argmax(dim=-1)
    out: list[torch.Tensor | None] = [None] * len(tokens)
    # Every text starts with the start token: texts that share nothing longer share it.
    groups = [(max(p, 1), idx) for p, idx in prefix_groups(tokens.cpu(), min_group)]
    prefix_kvs = _prefix_kv(model, [tokens[idx[0], :p] for p, idx in groups])
    for (p, idx), kv in zip(groups, prefix_kvs):
        idx = sorted(idx, key=lambda i: int(eot[i]))  # similar lengths together: least padding in attention
        for start in range(0, len(idx), batch_size):
            batch = idx[start:start + batch_size]
            lengths = (eot[batch] - p + 1).cpu()  # each suffix's tokens, its EOT included
            s = int(lengths.max())
            offsets = torch.arange(s)
            packing = _Packing(len(batch), s, (offsets < lengths[:, None]).flatten().nonzero().squeeze(1)
                               .to(tokens.device))
            column = packing.pos % s  # each real token's position within its suffix
            x = (model.token_embedding(tokens[batch, p:p + s].flatten()[packing.pos])
                 + model.positional_embedding[p + column])
            # The suffix sees the whole prefix and, causally, itself.
            mask = model.attn_mask[p:p + s, :p + s]
            for layer, block in enumerate(model.transformer.resblocks):
                x = _block(block, x, packing, kv[layer], mask)
            ends = (lengths.cumsum(0) - 1).to(tokens.device)  # each text's EOT in the stream
            x = model.ln_final(x[ends]) @ model.text_projection
            for i, row in zip(batch, x):
                out[i] = row
            if progress is not None:
                progress(len(batch))
    return torch.stack(out)
