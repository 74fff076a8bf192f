"""Cross-modal video decoder: identity at initialisation, SU weighting, any number of frames."""

import pytest
import torch

from kgclip_core.model.decoder import VideoDecoder


def perturbed_decoder(dim=16, seed=0):
    torch.manual_seed(seed)
    dec = VideoDecoder(dim, layers=2, heads=4, mlp_ratio=2.0, kernel=3)
    with torch.no_grad():
        for p in dec.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return dec


@pytest.mark.parametrize("t", [1, 2, 8, 16])
def test_untrained_decoder_returns_the_frames(t):
    torch.manual_seed(0)
    dec = VideoDecoder(16, layers=2, heads=4, mlp_ratio=2.0, kernel=3)
    frames = torch.randn(3, t, 16)
    out = dec(frames, torch.randn(3, t, 4, 16), torch.randn(3, 5, 16), torch.full((3, 5), 0.2))
    assert out.shape == (3, t, 16)
    torch.testing.assert_close(out, frames, rtol=0, atol=0)


@pytest.mark.parametrize("t", [1, 2, 8, 16])
def test_trained_decoder_shapes_with_and_without_regions_and_units(t):
    dec = perturbed_decoder()
    frames = torch.randn(2, t, 16)
    for regions in (None, torch.randn(2, t, 4, 16)):
        for units, weights in ((None, None), (torch.randn(2, 3, 16), torch.full((2, 3), 1 / 3))):
            out = dec(frames, regions, units, weights)
            assert out.shape == (2, t, 16)
            assert not torch.allclose(out, frames)


def test_units_count_by_their_selection_weight():
    dec = perturbed_decoder()
    frames, regions = torch.randn(1, 4, 16), torch.randn(1, 4, 2, 16)
    units = torch.randn(1, 2, 16)
    weights = torch.tensor([[1.0, 0.0]])  # the second unit is not selected
    moved = units.clone()
    moved[0, 1] = 10 * torch.randn(16)
    a = dec(frames, regions, units, weights)
    torch.testing.assert_close(a, dec(frames, regions, moved, weights), atol=1e-4, rtol=0)
    assert not torch.allclose(a, dec(frames, regions, units, torch.tensor([[0.5, 0.5]])))


def test_temporal_mixing_is_local_to_the_kernel():
    dec = perturbed_decoder()
    dec.layers = dec.layers[:1]  # one layer, kernel 3: frame t sees t-1, t, t+1
    frames = torch.randn(1, 8, 16)
    changed = frames.clone()
    changed[0, 0] += 1.0
    diff = (dec(changed) - dec(frames)).abs().sum(-1)[0]
    assert diff[:2].min() > 0
    assert diff[2:].max() == 0
