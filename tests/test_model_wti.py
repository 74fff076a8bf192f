"""Weighted token-wise interaction against a brute-force loop, with padding ignored."""

import torch
import torch.nn.functional as F

from kgclip_core.model.wti import WeightedTokenInteraction


def brute_force(module, words, word_mask, frames, frame_mask):
    """The formula of the architecture doc, one (video, class) pair at a time, real tokens only."""
    b, c = frames.shape[0], words.shape[0]
    out = torch.zeros(b, c)
    for bi in range(b):
        v = [frames[bi, j] for j in range(frames.shape[1]) if frame_mask[bi, j]]
        v_logits = torch.stack([module.frame_weight(x).squeeze() for x in v])
        w_v = torch.softmax(v_logits, 0)
        for ci in range(c):
            t = [words[ci, i] for i in range(words.shape[1]) if word_mask[ci, i]]
            w_t = torch.softmax(torch.stack([module.text_weight(x).squeeze() for x in t]), 0)
            s = torch.tensor([[float(F.cosine_similarity(ti, vj, dim=0)) for vj in v] for ti in t])
            t2v = sum(w_t[i] * s[i].max() for i in range(len(t)))
            v2t = sum(w_v[j] * s[:, j].max() for j in range(len(v)))
            out[bi, ci] = 0.5 * (t2v + v2t)
    return out


def random_case(seed=0, b=3, c=4, length=6, t=5, d=16):
    g = torch.Generator().manual_seed(seed)
    words = torch.randn(c, length, d, generator=g)
    frames = torch.randn(b, t, d, generator=g)
    word_mask = torch.zeros(c, length, dtype=torch.bool)
    for ci, n in enumerate([1, 3, length, 2][:c]):
        word_mask[ci, 1:1 + n] = True  # position 0 is SOT, like CLIP
    frame_mask = torch.ones(b, t, dtype=torch.bool)
    frame_mask[0, 3:] = False
    frame_mask[2, 1:] = False
    return words, word_mask, frames, frame_mask


def weighted_module(d=16, seed=1):
    torch.manual_seed(seed)
    module = WeightedTokenInteraction(d)
    # non-zero weight heads, so the softmax weights are not uniform
    for layer in (module.text_weight, module.frame_weight):
        torch.nn.init.normal_(layer.weight, std=1.0)
        torch.nn.init.normal_(layer.bias)
    return module


def test_matches_brute_force_with_padding():
    words, word_mask, frames, frame_mask = random_case()
    module = weighted_module()
    with torch.no_grad():
        out = module(words, word_mask, frames, frame_mask)
        expected = brute_force(module, words, word_mask, frames, frame_mask)
    torch.testing.assert_close(out.scores, expected, rtol=1e-5, atol=1e-5)
    assert out.similarity.shape == (3, 4, 6, 5)
    torch.testing.assert_close(out.word_weights.sum(-1), torch.ones(4))
    torch.testing.assert_close(out.frame_weights.sum(-1), torch.ones(3))


def test_padding_values_change_nothing():
    words, word_mask, frames, frame_mask = random_case(seed=3)
    module = weighted_module()
    with torch.no_grad():
        before = module(words, word_mask, frames, frame_mask)
        words2, frames2 = words.clone(), frames.clone()
        words2[~word_mask] = 1e3 * torch.randn(int((~word_mask).sum()), words.shape[-1])
        frames2[~frame_mask] = 1e3 * torch.randn(int((~frame_mask).sum()), frames.shape[-1])
        after = module(words2, word_mask, frames2, frame_mask)
    torch.testing.assert_close(before.scores, after.scores)
    assert (after.word_weights[~word_mask] == 0).all()
    assert (after.frame_weights[~frame_mask] == 0).all()


def test_initial_weights_are_uniform_and_scores_bounded():
    words, word_mask, frames, frame_mask = random_case(seed=4)
    out = WeightedTokenInteraction(16)(words, word_mask, frames, frame_mask)
    expected = word_mask.float() / word_mask.sum(1, keepdim=True)
    torch.testing.assert_close(out.word_weights, expected)
    assert out.scores.abs().max() <= 1.0 + 1e-6
