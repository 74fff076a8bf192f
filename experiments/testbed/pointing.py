"""Explanation faithfulness: the pointing game on the generator's ground-truth boxes.

For every sampled frame of a held-out clip, the *moving* parts are the body parts (the whole
body excluded: it is the union of the others) whose ground-truth state is not their resting
state. A map "hits" when its peak, placed on the frame like the app places it
(:func:`kgclip_core.explain.maps.to_frame`), falls inside one of those parts' boxes. Frames
without a visibly moving part are skipped. Maps scored:

- ``regions``: the MRA region maps, averaged over regions (where the model pools from);
- ``unit``: the dense map of the semantic unit with the largest selection weight;
- ``integrated gradients``: captum's IntegratedGradients of the predicted class's logit on
  the input pixels (absolute value summed over colour channels).

Baselines are exact expectations, not samples: ``random pixel`` (a peak anywhere: the share
of the frame the moving boxes cover) and ``random patch`` (a peak at one of the patch-grid
centres, the only places a grid map's upsampled peak can be).

The scoring helpers (:func:`peak_hits`, :func:`peak_patch_hits` and their baselines, over the
boxes of :mod:`kgclip_core.synth.regions`) are shared with ``experiments.heatmaps``, which plays
the game per named body part.
"""

from __future__ import annotations

import numpy as np
import torch
from captum.attr import IntegratedGradients

from kgclip_core.explain.maps import to_frame
from kgclip_core.model.kgclip import ClassFeatures, KGClipModel
from kgclip_core.synth.figure import rest_state
from kgclip_core.synth.regions import EXCLUDED_PARTS, boxes_mask, cells_touched
from experiments.testbed.data import ClipSet

IG_STEPS = 8


def moving_mask(frame_truth: dict, size: tuple[int, int]) -> np.ndarray | None:
    """Boolean [H, W] mask of the boxes of the parts that are not at rest; None when none is."""
    boxes = [part["box"] for key, part in frame_truth["parts"].items()
             if key not in EXCLUDED_PARTS and part["box"] is not None and part["state"] != rest_state(key)]
    return boxes_mask(boxes, size) if boxes else None


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


def pointing_game(model: KGClipModel, clips: ClipSet, classes: ClassFeatures) -> dict[str, float]:
    """Hit rates (%) of the model's maps and of the baselines over every usable frame of ``clips``."""
    t = model.cfg.num_frames
    frame_ids = clips.frame_indices(t)
    counts: dict[str, list[bool]] = {}
    ig = IntegratedGradients(lambda x: model(x, classes).logits)
    for i in range(len(clips)):
        truth = clips.truth[i]
        size = tuple(truth["size"])
        masks = [moving_mask(truth["frames"][int(f)], size) for f in frame_ids]
        keep = [k for k, m in enumerate(masks) if m is not None]
        if not keep:
            continue
        kept_masks = [masks[k] for k in keep]
        images = clips.clips([i], t, None)
        with torch.no_grad():
            video = model.encode_video(images)
            out = model.score(video, classes, explain=True)
        target = int(out.logits.argmax(1))
        maps: dict[str, np.ndarray] = {}
        if out.region_maps is not None:
            maps["regions"] = out.region_maps[0].mean(1).numpy()
        if out.unit_maps is not None:
            best = int(out.su.weights[0].argmax())
            maps["unit"] = out.unit_maps[0, :, best].numpy()
        with torch.enable_grad():
            attr = ig.attribute(images, baselines=torch.zeros_like(images), target=target,
                                n_steps=IG_STEPS, internal_batch_size=IG_STEPS)
        maps["integrated gradients"] = attr[0].abs().sum(1).detach().numpy()
        for name, grid_maps in maps.items():
            on_frames = to_frame(grid_maps[keep], size)
            counts.setdefault(name, []).extend(peak_hits(on_frames, kept_masks))
        baselines = [random_baselines(m, video.grid) for m in kept_masks]
        counts.setdefault("random pixel", []).extend(b["pixel"] for b in baselines)
        counts.setdefault("random patch", []).extend(b["patch centre"] for b in baselines)
    return {name: 100.0 * float(np.mean(values)) for name, values in counts.items()}
