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
