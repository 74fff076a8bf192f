"""Semantic-unit selection: per-frame scores, top-k per video, semantic attention weights."""

import torch
import torch.nn.functional as F

from kgclip_core.model.su_select import select_units


def test_frame_scores_are_best_token_cosines():
    g = torch.Generator().manual_seed(0)
    visual = torch.randn(2, 3, 5, 8, generator=g)
    units = torch.randn(7, 8, generator=g)
    sel = select_units(visual, units, top_k=3, temperature=0.1)
    for b in range(2):
        for t in range(3):
            for u in range(7):
                best = max(float(F.cosine_similarity(visual[b, t, v], units[u], dim=0)) for v in range(5))
                assert abs(float(sel.frame_scores[b, t, u]) - best) < 1e-5
    torch.testing.assert_close(sel.video_scores, sel.frame_scores.mean(1))
    assert sel.indices.shape == sel.weights.shape == (2, 3)
    torch.testing.assert_close(sel.weights.sum(-1), torch.ones(2))


def test_a_unit_shown_by_a_region_is_selected_first():
    g = torch.Generator().manual_seed(1)
    units = torch.randn(6, 16, generator=g)
    visual = torch.randn(2, 4, 3, 16, generator=g)
    visual[0, :, 2] = 5 * units[4]  # region 2 of video 0 shows unit 4 in every frame
    visual[1, :, 1] = units[1]
    sel = select_units(visual, units, top_k=2, temperature=0.01)
    assert sel.indices[:, 0].tolist() == [4, 1]
    torch.testing.assert_close(sel.frame_scores[0, :, 4], torch.ones(4))
    assert sel.weights[0, 0] > sel.weights[0, 1]


def test_top_k_is_clipped_to_the_number_of_units():
    sel = select_units(torch.randn(1, 2, 1, 8), torch.randn(3, 8), top_k=10, temperature=0.1)
    assert sorted(sel.indices[0].tolist()) == [0, 1, 2]


def test_a_bias_changes_the_ranking_but_not_the_scores():
    """The hubness correction: a unit close to every frame (a hub) loses its place to one the
    clip shows more than usual, while the units' scores stay raw cosines."""
    units = torch.eye(4, 8)
    visual = torch.zeros(1, 3, 1, 8)
    visual[..., 0] = 0.9  # unit 0, the hub: high cosine
    visual[..., 1] = 0.6  # unit 1: lower, but far above what clips usually show of it
    visual[..., 2] = 0.3
    plain = select_units(visual, units, top_k=1, temperature=0.1)
    bias = torch.tensor([[0.8, 0.1, 0.0, 0.0]])  # [V=1, U]: what each unit usually scores
    corrected = select_units(visual, units, top_k=1, temperature=0.1, per_frame=True, bias=bias)
    assert plain.indices.tolist() == [[0]]
    assert corrected.indices.tolist() == [[1]]
    assert corrected.frame_indices[0, :, 0].tolist() == [1, 1, 1]
    torch.testing.assert_close(corrected.frame_scores, plain.frame_scores)
    torch.testing.assert_close(corrected.video_scores, plain.video_scores)
