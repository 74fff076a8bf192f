"""Triplet encoder: head/tail construction, deviation compensation, inverse relations."""

import pytest
import torch
import torch.nn.functional as F

from kgclip_core.model.triplet import RELATIONS, TripletEncoder, relation_id


def encoder(seed=0):
    torch.manual_seed(seed)
    return TripletEncoder(16, layers=3, heads=4)


def test_score_is_cosine_of_head_and_tail():
    enc = encoder()
    h, t = torch.randn(5, 16), torch.randn(5, 16)
    rel = torch.tensor([0, 1, 2, 3, 4])
    head, tail = enc.encode(h, rel, t)
    torch.testing.assert_close(enc(h, rel, t), F.cosine_similarity(head, tail, dim=-1))


def test_head_is_x0_x1_minus_delta_and_tail_x2_x3():
    enc = encoder()
    h, t, rel = torch.randn(3, 16), torch.randn(3, 16), torch.tensor([2, 2, 5])
    r1, r2 = enc.relations(rel).chunk(2, dim=-1)
    x = torch.stack([h, r1, r2, t], 1)
    x = x + enc.transformer(x + enc.positions)
    head, tail = enc.encode(h, rel, t)
    torch.testing.assert_close(head, x[:, 0] * x[:, 1] - enc.delta)
    torch.testing.assert_close(tail, x[:, 2] * x[:, 3])
    with torch.no_grad():
        enc.delta.add_(1.0)
    head2, tail2 = enc.encode(h, rel, t)
    torch.testing.assert_close(head2, head - 1.0)
    torch.testing.assert_close(tail2, tail)


def test_pair_scores_match_single_triples_forward_and_inverse():
    enc = encoder()
    heads, tails = torch.randn(2, 16), torch.randn(3, 16)
    fwd, inv = enc.pair_scores(heads, "video-action", tails)
    assert fwd.shape == inv.shape == (2, 3)
    f_id, i_id = relation_id("video-action"), relation_id("video-action", inverse=True)
    assert i_id == f_id + len(RELATIONS)
    for i in range(2):
        for j in range(3):
            one = enc(heads[i:i + 1], torch.tensor([f_id]), tails[j:j + 1])
            back = enc(tails[j:j + 1], torch.tensor([i_id]), heads[i:i + 1])
            torch.testing.assert_close(fwd[i, j], one[0])
            torch.testing.assert_close(inv[i, j], back[0])
    assert not torch.allclose(fwd, inv)


def test_unknown_relation_is_refused():
    with pytest.raises(ValueError, match="unknown relation"):
        relation_id("video-scene")
