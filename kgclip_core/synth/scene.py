"""Scene clutter around the figure: procedural backgrounds and moving distractor shapes.

Every colour here is muted (a grey with a small tint), far from the saturated body-part
colours of figure.py, so a pixel in a part's colour can only come from that part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

BACKGROUNDS = ("flat", "gradient", "checker", "stripes", "blobs")
SHAPES = ("rectangle", "ellipse", "triangle")
GREY_RANGE = (70, 170)
MAX_TINT = 16


def muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A random low-saturation colour (float RGB)."""
    grey = rng.uniform(*GREY_RANGE)
    return np.clip(grey + rng.uniform(-MAX_TINT, MAX_TINT, size=3), 0, 255)


def make_background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` uint8 RGB background of the given kind."""
    c1, c2 = muted_colour(rng), muted_colour(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == "flat":
        mix = np.zeros((size, size), np.float32)
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xx + np.sin(angle) * yy
        mix = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    elif kind == "checker":
        cell = int(rng.integers(6, 17))
        iy, ix = np.mgrid[0:size, 0:size] // cell
        mix = ((iy + ix) % 2).astype(np.float32)
    elif kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(8, 24) / size
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period)
    elif kind == "blobs":
        cells = int(rng.integers(3, 8))
        coarse = Image.fromarray((rng.uniform(0, 255, (cells, cells))).astype(np.uint8))
        mix = np.asarray(coarse.resize((size, size), Image.BILINEAR), np.float32) / 255.0
    else:
        raise ValueError(f"unknown background {kind!r}")
    img = c1[None, None, :] * (1 - mix[..., None]) + c2[None, None, :] * mix[..., None]
    return img.astype(np.uint8)


@dataclass(frozen=True)
class Distractor:
    """A shape moving in a straight line behind the figure (pixels, pixels per frame)."""

    kind: str
    centre: tuple[float, float]
    velocity: tuple[float, float]
    radius: float
    colour: tuple[int, int, int]

    def draw(self, draw: ImageDraw.ImageDraw, frame: int, offset: tuple[int, int]) -> None:
        """Paint the shape as it is at ``frame``, shifted by the camera ``offset``."""
        cx = self.centre[0] + self.velocity[0] * frame + offset[0]
        cy = self.centre[1] + self.velocity[1] * frame + offset[1]
        r = self.radius
        if self.kind == "rectangle":
            draw.rectangle((cx - r, cy - 0.6 * r, cx + r, cy + 0.6 * r), fill=self.colour)
        elif self.kind == "ellipse":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=self.colour)
        else:
            draw.polygon(((cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)), fill=self.colour)


def sample_distractors(count: int, size: int, rng: np.random.Generator) -> list[Distractor]:
    """``count`` random distractor shapes for a ``size``-pixel frame."""
    return [
        Distractor(
            kind=SHAPES[int(rng.integers(len(SHAPES)))],
            centre=(float(rng.uniform(0, size)), float(rng.uniform(0, size))),
            velocity=(float(rng.uniform(-1.0, 1.0)), float(rng.uniform(-1.0, 1.0))),
            radius=float(rng.uniform(0.04, 0.12) * size),
            colour=tuple(int(c) for c in muted_colour(rng)),
        )
        for _ in range(count)
    ]
