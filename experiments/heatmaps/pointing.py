"""The pointing game's scoring: does a map's peak fall in a ground-truth mask, and how often would
a random peak?

A map "hits" a frame when its peak lies in the frame's mask: on the frame (:func:`peak_hits`,
the map placed as the app places it) or at the map's own resolution (:func:`peak_patch_hits`,
the peak cell overlaps the mask). The baselines are exact expectations, not samples
(:func:`random_baselines`): a peak anywhere (the share of the frame the mask covers), at one of
the patch-grid centres (the only places a grid map's upsampled peak can be), in a random cell.
The masks are the boxes of :mod:`kgclip_core.synth.regions`.
"""

from __future__ import annotations

import numpy as np

from kgclip_core.synth.figure import rest_state
from kgclip_core.synth.regions import EXCLUDED_PARTS, cells_touched


def patch_centres(grid: tuple[int, int], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel rows and columns of the patch-grid centres on a square frame of ``size``."""
    (gh, gw), (h, w) = grid, size
    rows = ((np.arange(gh) + 0.5) * h / gh).astype(int)
    cols = ((np.arange(gw) + 0.5) * w / gw).astype(int)
    return rows, cols


def peak_hits(maps: np.ndarray, masks: list[np.ndarray]) -> list[bool]:
    """maps [T, H, W] on the frames -> whether each frame's peak lies in its mask."""
    hits = []
    for m, mask in zip(maps, masks):
        y, x = np.unravel_index(int(np.argmax(m)), m.shape)
        hits.append(bool(mask[y, x]))
    return hits


def peak_patch_hits(grid_maps: np.ndarray, masks: list[np.ndarray]) -> list[bool]:
    """Grid maps [T, h, w] -> whether each map's peak cell overlaps its frame's mask: the
    pointing game at the map's own resolution (a part smaller than a patch still counts when
    the right patch is chosen)."""
    hits = []
    for m, mask in zip(grid_maps, masks):
        y, x = np.unravel_index(int(np.argmax(m)), m.shape)
        hits.append(bool(cells_touched(mask, m.shape)[y, x]))
    return hits


def random_baselines(mask: np.ndarray, grid: tuple[int, int]) -> dict[str, float]:
    """Exact hit rates of a random peak for one frame's mask: anywhere on the frame (``pixel``),
    at a patch centre (``patch centre``), in a random cell (``patch``, for :func:`peak_patch_hits`)."""
    rows, cols = patch_centres(grid, mask.shape)
    return {"pixel": float(mask.mean()), "patch centre": float(mask[np.ix_(rows, cols)].mean()),
            "patch": float(cells_touched(mask, grid).mean())}


def named_part(unit: str, parts: list[str]) -> list[str]:
    """The ground-truth part keys a unit's text names: "right hand wave" -> ["right hand"];
    "arm raise" (no side) -> both arms; "wave" or "ball" -> none."""
    words = unit.split()
    for n in (2, 1):
        named = [key for key in parts if key.split() == words[:n] or (n == 1 and key.split()[-1] == words[0])]
        if named:
            return named
    return []


def moving_parts(truth: dict) -> set[str]:
    """The part keys whose ground-truth state leaves rest in some frame of the clip."""
    return {key for frame in truth["frames"] for key, part in frame["parts"].items()
            if key not in EXCLUDED_PARTS and part["state"] != rest_state(key)}
