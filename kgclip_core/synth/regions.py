"""Where a movement is in a frame: the ground truth's part boxes on pixels and on a patch grid.

Shared by the region-text pretraining (:mod:`kgclip_core.synth.pretrain`, which pairs the patch
tokens over a moving part with the movement's phrase) and the pointing game of the experiments
(which asks whether a map's peak falls on that part).
"""

from __future__ import annotations

import numpy as np

from kgclip_core.kg.knowledge import Movement as KGMovement
from kgclip_core.synth.actions import Action

# The whole body's box is the union of the others: it names no part a map could point at.
EXCLUDED_PARTS = ("whole body",)


def part_key(part: str, side: str | None) -> str:
    """The ground truth's key of a movement's part: ``"right hand"``, ``"torso"``."""
    return f"{side} {part}" if side else part


def boxes_mask(boxes: list[list[int]], size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Boolean [H, W] mask of ``[x0, y0, x1, y1]`` boxes (exclusive ends), scaled by ``scale``
    (frames read at another size than the ground truth's)."""
    mask = np.zeros(size, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[int(y0 * scale):int(np.ceil(y1 * scale)), int(x0 * scale):int(np.ceil(x1 * scale))] = True
    return mask


def cells_touched(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Boolean [h, w]: which cells of a ``grid`` laid over the (square) frame overlap ``mask``."""
    (gh, gw), (h, w) = grid, mask.shape
    rows = np.minimum((np.arange(h) * gh) // h, gh - 1)
    cols = np.minimum((np.arange(w) * gw) // w, gw - 1)
    touched = np.zeros(grid, dtype=bool)
    ys, xs = np.nonzero(mask)
    touched[rows[ys], cols[xs]] = True
    return touched


def movement_cells(action: Action, frame_truth: dict, frame_size: tuple[int, int], scale: float,
                   grid: tuple[int, int], crop: tuple[int, int, int] | None = None) -> list[tuple[str, np.ndarray]]:
    """(phrase, cells [h, w]) of each movement of ``action`` that this frame shows: its part is
    drawn and in the movement's state. The phrase is the knowledge graph's ("right hand wave");
    the cells are the patches of a ``grid`` over a ``frame_size`` frame that its box touches
    (``scale``: frame pixels per ground-truth pixel), or over the square ``crop`` (top, left,
    side) of that frame the model saw instead; a part cropped out is left out."""
    out = []
    for part, side, state, obj in action.movements():
        key = part_key(part, side)
        drawn = frame_truth["parts"].get(key)
        if key in EXCLUDED_PARTS or drawn is None or drawn["box"] is None or drawn["state"] != state:
            continue
        mask = boxes_mask([drawn["box"]], frame_size, scale)
        if crop is not None:
            top, left, size = crop
            mask = mask[top:top + size, left:left + size]
        if mask.any():
            out.append((KGMovement(part, state, side, obj).phrase, cells_touched(mask, grid)))
    return out
