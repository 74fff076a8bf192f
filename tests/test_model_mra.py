"""Multi-region attention: shapes, maps that sum to one, spatial priors that separate regions."""

import pytest
import torch

from kgclip_core.model.mra import MultiRegionAttention, grid_coordinates, initial_centres


@pytest.mark.parametrize("regions", [1, 4])
@pytest.mark.parametrize("n", [1, 6])
def test_shapes_and_maps_sum_to_one(regions, n):
    torch.manual_seed(0)
    mra = MultiRegionAttention(32, regions)
    grid = (3, 5)
    feats, maps = mra(torch.randn(n, 32), torch.randn(n, 15, 32), grid)
    assert feats.shape == (n, regions, 32)
    assert maps.shape == (n, regions, 3, 5)
    torch.testing.assert_close(maps.sum((-1, -2)), torch.ones(n, regions))


def test_region_features_at_init_are_attention_weighted_patches():
    torch.manual_seed(0)
    mra = MultiRegionAttention(16, 4)
    patches = torch.randn(2, 16, 16)
    feats, maps = mra(torch.randn(2, 16), patches, (4, 4))
    torch.testing.assert_close(feats, maps.flatten(2) @ patches)


def test_priors_put_regions_on_different_quadrants():
    torch.manual_seed(0)
    mra = MultiRegionAttention(16, 4)
    # identical patches: content gives no preference, so each map is its spatial prior
    patches = torch.randn(1, 1, 16).expand(1, 49, 16)
    _, maps = mra(torch.randn(1, 16), patches, (7, 7))
    coords = grid_coordinates((7, 7), torch.device("cpu"))
    peaks = coords[maps[0].flatten(1).argmax(-1)]  # (x, y) of each region's strongest patch
    quadrants = {(bool(x > 0), bool(y > 0)) for x, y in peaks.tolist()}
    assert len(quadrants) == 4
    nearest = coords[torch.cdist(initial_centres(4), coords).argmin(-1)]
    torch.testing.assert_close(peaks, nearest)


def test_grid_must_match_patch_count():
    mra = MultiRegionAttention(8, 2)
    with pytest.raises(ValueError, match="grid"):
        mra(torch.randn(1, 8), torch.randn(1, 10, 8), (3, 3))
