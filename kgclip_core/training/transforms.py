"""Frame transforms for training and testing, identical across the frames of one clip.

Training: random resized crop, horizontal flip, colour jitter and random grayscale, with one
set of parameters per clip (a crop that moved between frames would invent motion). Where left
and right are part of the label (the synthetic actions), ``flip_p=0`` turns flips off
(``data.flip: false`` in a training config). Testing:
resize the short side to the model's input size and take 1 (centre) or 3 (both ends and
centre of the long side) square crops of every temporal view.

Random parameters come from an explicit ``numpy`` generator, so a sample's augmentation
depends only on (seed, epoch, index): the same in any worker, on any rank, after a resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF


@dataclass(frozen=True)
class ClipTransform:
    """uint8 frames ``[V, T, H, W, 3]`` -> normalised float ``[V * crops, T, 3, S, S]``."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    train: bool
    test_crops: int = 1
    scale: tuple[float, float] = (0.4, 1.0)  # area of the crop; video clips need context
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: float = 0.4  # brightness, contrast and saturation in [1 - j, 1 + j]
    jitter_p: float = 0.8
    grayscale_p: float = 0.2

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 1, 4, 2, 3).float().div_(255.0)
        if self.train:
            if rng is None:
                raise ValueError("training transforms need a random generator")
            views = [self._augment(view, rng) for view in x]
        else:
            views = [crop for view in x for crop in self._test_crops(view)]
        out = torch.stack(views)
        return TF.normalize(out.flatten(0, 1), list(self.mean), list(self.std)).view(out.shape)

    def _crop_box(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """torchvision's RandomResizedCrop box, drawn from ``rng``; centre crop as fallback."""
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        side = min(h, w)
        return (h - side) // 2, (w - side) // 2, side, side

    def _augment(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        top, left, ch, cw = self._crop_box(*clip.shape[-2:], rng)
        size = [self.image_size, self.image_size]
        clip = TF.resized_crop(clip, top, left, ch, cw, size, antialias=True)
        if rng.random() < self.flip_p:
            clip = TF.horizontal_flip(clip)
        if rng.random() < self.jitter_p:
            lo, hi = 1 - self.jitter, 1 + self.jitter
            adjust = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation]
            for i in rng.permutation(len(adjust)):
                clip = adjust[i](clip, float(rng.uniform(lo, hi)))
        if rng.random() < self.grayscale_p:
            clip = TF.rgb_to_grayscale(clip, num_output_channels=3)
        return clip.clamp(0.0, 1.0)

    def _test_crops(self, clip: torch.Tensor) -> list[torch.Tensor]:
        h, w = clip.shape[-2:]
        s = self.image_size
        scale = s / min(h, w)
        nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
        clip = TF.resize(clip, [nh, nw], antialias=True).clamp_(0.0, 1.0)
        centre = ((nh - s) // 2, (nw - s) // 2)
        if self.test_crops == 1:
            starts = [centre]
        elif nw >= nh:  # three crops along the long side
            starts = [(centre[0], left) for left in (0, centre[1], nw - s)]
        else:
            starts = [(top, centre[1]) for top in (0, centre[0], nh - s)]
        return [clip[..., t:t + s, left:left + s] for t, left in starts]
