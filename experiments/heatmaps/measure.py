"""Scoring heatmap methods on one clip against the generator's ground truth.

For every sampled frame and every movement unit of the clip's class that names a drawn body
part ("right hand wave" -> the right hand; whole-body units are skipped, their box is the whole
figure), the unit is *shown* in that frame when the part's ground-truth state is the unit's
state. For each shown (frame, unit) pair and each method:

- **pointing game**: does the map's peak fall on the named part? At the map's resolution
  (``patch``: the peak cell overlaps the part's box) and on the frame (``pixel``: the peak of
  the map placed on the frame as the app places it lies inside the box), each beside the exact
  hit rate of a random peak (:mod:`experiments.heatmaps.pointing`); and whether the peak patch is on
  the torso, the figure's centre, where a map that finds the figure but not the part peaks;
- **detection** (:func:`detection_auc`): whether the frame's score for a unit (its cosine with the
  frame's embedding) tells the frames that show the unit from all the others, as a ROC AUC per
  unit (0.5 = chance). A model that cannot tell it from the frame has no evidence to localise;
- **deletion / insertion** (one pair per frame, the first shown unit): patches are removed from
  the image (set to the mean colour), or added to a mean-colour image, in the order of the map,
  and the frame's cosine with the unit's text is recorded after each step; the areas under the
  two curves (fraction of patches on the x axis) are the scores: a faithful map makes the
  deletion curve fall fast (low area) and the insertion curve rise fast (high area). A random
  order is the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from kgclip_core.backbone import ClipBackbone
from kgclip_core import heatmaps
from kgclip_core.explain.maps import to_frame
from kgclip_core.synth.actions import get_action
from kgclip_core.synth.regions import EXCLUDED_PARTS, boxes_mask, part_key
from experiments.heatmaps.common import CURVE_STEPS, RANDOM
from experiments.heatmaps.pointing import peak_hits, peak_patch_hits, random_baselines

TORSO = "torso"  # where a map with no sense of the parts tends to peak: the figure's centre


@dataclass(frozen=True)
class NamedUnit:
    """A movement unit of an action and the body part (ground-truth key) and state it names."""

    text: str
    part: str
    state: str


def named_units(action: str) -> list[NamedUnit]:
    """The action's movement units that name a drawn body part, in the knowledge graph's words."""
    out = []
    for part, side, state, obj in get_action(action).movements():
        key = part_key(part, side)
        if key not in EXCLUDED_PARTS:
            out.append(NamedUnit(" ".join(w for w in (side, part, state, obj) if w), key, state))
    return out


def _grid_of(maps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Maps [..., h, w] at any resolution -> the patch grid (mean over each patch)."""
    return F.adaptive_avg_pool2d(maps.reshape(-1, 1, *maps.shape[-2:]), grid).reshape(*maps.shape[:-2], *grid)


def _curve_images(image: torch.Tensor, order: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Deletion then insertion images [2 * (CURVE_STEPS - 1), 3, S, S] for a patch order (best first);
    the shared end points (the full and the empty image) are left out."""
    cells = order.numel()
    side = image.shape[-1] // grid[0]
    out = []
    for step in range(1, CURVE_STEPS):
        chosen = torch.zeros(cells, dtype=torch.bool)
        chosen[order[: round(step * cells / CURVE_STEPS)]] = True
        keep = chosen.reshape(grid).repeat_interleave(side, 0).repeat_interleave(side, 1)
        out.append((image * ~keep, image * keep))
    return torch.stack([d for d, _ in out] + [i for _, i in out])


@torch.no_grad()
def _cosines(backbone: ClipBackbone, images: torch.Tensor, text: torch.Tensor) -> np.ndarray:
    cls, _ = backbone.encode_frames(images)
    return (F.normalize(cls, dim=-1) @ text).numpy()


def deletion_insertion(backbone: ClipBackbone, image: torch.Tensor, text: torch.Tensor,
                       grid_maps: dict[str, torch.Tensor], rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    """Areas under the deletion and insertion curves of each map [h, w] (and of a random order)."""
    cells = grid_maps[next(iter(grid_maps))].numel()
    orders = {name: m.flatten().argsort(descending=True) for name, m in grid_maps.items()}
    orders[RANDOM] = torch.as_tensor(rng.permutation(cells))
    batch = torch.cat([image[None], torch.zeros_like(image)[None],
                       *(_curve_images(image, o, backbone.grid_size) for o in orders.values())])
    scores = _cosines(backbone, batch, text)
    full, empty, inner = scores[0], scores[1], scores[2:].reshape(len(orders), 2, CURVE_STEPS - 1)
    x = np.linspace(0.0, 1.0, CURVE_STEPS + 1)
    out = {}
    for name, (deletion, insertion) in zip(orders, inner):
        out[name] = (float(np.trapezoid(np.r_[full, deletion, empty], x)),
                     float(np.trapezoid(np.r_[empty, insertion, full], x)))
    return out


def score_clip(backbone: ClipBackbone, images: torch.Tensor, frame_size: tuple[int, int], truth: dict,
               frame_indices: list[int], unit_emb: dict[str, torch.Tensor], methods: list[str],
               rng: np.random.Generator) -> list[dict]:
    """One row per shown (frame, unit) pair: per method, pointing hits; the baselines; and, for the
    first pair of each frame, the deletion/insertion areas of every method and of a random order."""
    units = [u for u in named_units(truth["action"]) if u.text in unit_emb]
    if not units:
        return []
    texts = torch.stack([unit_emb[u.text] for u in units])
    grid = backbone.grid_size
    concepts = torch.stack(list(unit_emb.values()))  # the label set's: what `surgery` contrasts with
    patches = None  # one pass for every patch-cosine method, as in a prediction
    if any(m in heatmaps.PATCH_COSINE for m in methods):
        with torch.no_grad():
            _, patches = backbone.encode_frames(images)
    maps = {m: heatmaps.text_maps(backbone, images, texts, m, patches=patches, concepts=concepts)
            for m in methods}  # [T, K, h, w] or pixels
    grid_maps = {m: _grid_of(v, grid) for m, v in maps.items()}
    scale = frame_size[0] / truth["size"][0]
    rows = []
    for t, index in enumerate(frame_indices):
        parts = truth["frames"][index]["parts"]
        first = True
        for k, unit in enumerate(units):
            part = parts[unit.part]
            if part["state"] != unit.state or part["box"] is None:
                continue
            mask = boxes_mask([part["box"]], frame_size, scale)
            torso = boxes_mask([parts[TORSO]["box"]], frame_size, scale) if parts[TORSO]["box"] else mask & False
            row = {"unit": unit.text, "part": unit.part, "baseline": random_baselines(mask, grid),
                   "torso baseline": random_baselines(torso, grid)["patch"], "methods": {}}
            for m in methods:
                on_frame = to_frame(maps[m][t, k].numpy(), frame_size)
                grid_map = grid_maps[m][t, k][None].numpy()
                row["methods"][m] = {"patch": peak_patch_hits(grid_map, [mask])[0],
                                     "pixel": peak_hits(on_frame[None], [mask])[0],
                                     "torso": peak_patch_hits(grid_map, [torso])[0]}
            if first:
                curves = deletion_insertion(backbone, images[t], texts[k],
                                            {m: grid_maps[m][t, k] for m in methods}, rng)
                row["curves"] = curves
                first = False
            rows.append(row)
    return rows


def frame_unit_cosines(backbone: ClipBackbone, images: torch.Tensor, truth: dict, frame_indices: list[int],
                       units: dict[str, NamedUnit], unit_emb: dict[str, torch.Tensor]) -> list[dict]:
    """Every frame's cosine with every named unit of the label set, and whether the frame shows it
    (the unit is one of the clip's action and the part is in the unit's state)."""
    own = {u.text for u in named_units(truth["action"])}
    texts = list(units)
    scores = _cosines(backbone, images, torch.stack([unit_emb[t] for t in texts]).T)  # [T, U]
    rows = []
    for t, index in enumerate(frame_indices):
        parts = truth["frames"][index]["parts"]
        for u, text in enumerate(texts):
            shown = text in own and parts[units[text].part]["state"] == units[text].state
            rows.append({"unit": text, "part": units[text].part, "shown": shown, "cosine": float(scores[t, u])})
    return rows


def detection_auc(rows: list[dict], least: int = 3) -> dict[str, float]:
    """ROC AUC of the cosine, shown frames against the others, per unit with at least ``least``
    shown frames, averaged per body part (``right hand`` and ``left hand`` count as ``hand``)."""
    by_unit: dict[str, list[dict]] = {}
    for r in rows:
        by_unit.setdefault(r["unit"], []).append(r)
    per_part: dict[str, list[float]] = {}
    for unit_rows in by_unit.values():
        pos = np.array([r["cosine"] for r in unit_rows if r["shown"]])
        neg = np.array([r["cosine"] for r in unit_rows if not r["shown"]])
        if len(pos) >= least and len(neg):
            auc = float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())
            per_part.setdefault(unit_rows[0]["part"].split()[-1], []).append(auc)
    return {part: float(np.mean(v)) for part, v in sorted(per_part.items())}
