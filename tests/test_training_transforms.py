"""Training transforms: horizontal flips happen as often as ``flip_p`` says, never when it is 0."""

import numpy as np
import pytest
import torch

from kgclip_core.training.transforms import ClipTransform


def _transform(flip_p: float) -> ClipTransform:
    # Full-frame crops and no colour changes: only the flip can differ between outputs.
    return ClipTransform(image_size=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), train=True, scale=(1.0, 1.0),
                         ratio=(1.0, 1.0), flip_p=flip_p, jitter_p=0.0, grayscale_p=0.0)


@pytest.mark.parametrize("flip_p, flips", [(0.0, 0), (1.0, 20)])
def test_flip_probability(flip_p, flips):
    frames = np.zeros((1, 2, 8, 8, 3), dtype=np.uint8)
    frames[..., :, :2, :] = 255  # a bright left edge
    plain = _transform(0.0)(frames, np.random.default_rng(0))
    mirrored = torch.flip(plain, dims=[-1])
    assert not torch.equal(plain, mirrored)
    outs = [_transform(flip_p)(frames, np.random.default_rng(seed)) for seed in range(20)]
    assert sum(torch.equal(o, mirrored) for o in outs) == flips
    assert sum(torch.equal(o, plain) for o in outs) == 20 - flips
