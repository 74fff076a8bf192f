"""The model's dense maps placed on the sampled frames.

The model sees the centre square of each frame (short-side resize, centre crop), so its maps
on the patch grid [H', W'] cover that square only. :func:`to_frame` upsamples a map
bilinearly onto the square and leaves the rest of the frame at zero: the result has the
frame's own size and aspect, and shows where the model could not look.

The evidence, region and unit maps returned here sum to 1 over the frame, like the model's own
maps (a softmax over space): a pixel's value is the share of the map's attention it holds. The
evidence maps (where each concept the predicted class expects shows) and the unit maps are made
by the Predictor's heatmap method (``Prediction.heatmap_method``, see ``kgclip_core.heatmaps``). :func:`text_heatmaps` maps any texts (a concept of the evidence, a class)
on a prediction's frames by any method, in [0, 1] with 1 at each frame's peak.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kgclip_core.errors import LabelError
from kgclip_core.heatmaps import HEATMAP_METHODS, text_maps
from kgclip_core.labels import LabelSet
from kgclip_core.prediction import Evidence, Prediction
from kgclip_core.predictor import Predictor

# The top class's own concepts first: the maps that explain the prediction shown above them.
HEATMAP_KINDS = ("evidence", "regions", "units", "rival")
NO_EVIDENCE_MAPS = ("the gradient heatmap methods make no concept maps (a pass per concept): choose the "
                    "units' maps, or run the deep explanation")
NO_EVIDENCE = "the predicted action has no concepts in the knowledge graph to map: choose another kind of map"
NO_RIVAL_MAPS = ("no maps of the rival's own concepts: it has none the top action lacks, or the heatmap method "
                 "makes no concept maps")
NO_REGIONS = ("this model has no multi-region attention (MRA) module, so it has no region maps: "
              "choose the units' maps")


def crop_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the centre square the model sees in a ``height`` x ``width`` frame."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def to_frame(maps: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Maps [..., h, w] on the model's grid -> [..., H, W] on frames of ``frame_size`` (H, W).

    Bilinear upsampling onto the centre square, zero outside it. Values are not rescaled.
    """
    height, width = frame_size
    top, left, side = crop_box(height, width)
    lead = maps.shape[:-2]
    grid = torch.as_tensor(np.asarray(maps, dtype=np.float32)).reshape(-1, 1, *maps.shape[-2:])
    square = F.interpolate(grid, size=(side, side), mode="bilinear", align_corners=False)
    out = np.zeros((grid.shape[0], height, width), dtype=np.float32)
    out[:, top:top + side, left:left + side] = square[:, 0].clamp_min(0).numpy()
    return out.reshape(*lead, height, width)


# Which concepts' maps say most about where an action happens: a movement names a part and what it
# does, a bare motion word ("wave") or an object names neither place nor part.
TELLING_TYPES = ("movement", "part_state", "body_part", "object", "motion", "scene")
# The name of the rule below, recorded with every measurement of the first map
# (experiments.explanations.first_map): change it with the rule, so that rows of another rule are
# never read as this one's.
FIRST_MAP_RULE = "a part before the whole body, specific type, telling, the limb before hand or foot"
# Parts smaller than a patch of the model's grid (a hand is 5-7 px of a 112-px frame, a patch 14 or
# 28): a map can place the limb that carries one better than the hand or foot itself.
_SMALL_PARTS = frozenset({"hand", "foot"})


def type_rank(kind: str) -> int:
    """Where a concept type stands in :data:`TELLING_TYPES` (the most specific first; unknown last)."""
    return TELLING_TYPES.index(kind) if kind in TELLING_TYPES else len(TELLING_TYPES)


def concept_rank(e: Evidence, telling: bool) -> tuple:
    """The sort key of concept ``e`` for the first map (smallest first); ``telling``: the top
    action needs it and its runner-up lacks it. In order: shown before not shown; a concept of
    one part before one of the whole body, which names no place ("whole body squat" lit the
    torso while the legs bent); by type, a movement (a part doing something) before a part
    state, a body part, and a bare word (an object, a motion, a scene); a telling concept
    before a shared one; a limb before a hand or a foot ("right leg kick" before "right foot
    kick"); then by score."""
    return (not e.present, e.text.startswith("whole body"), type_rank(e.type), not telling,
            bool(_SMALL_PARTS.intersection(e.text.split())), -e.score)


def telling_concept(pred: Prediction) -> int | None:
    """The index (in ``pred.evidence``) of the map shown first: the most specific concept the
    clip shows, the most telling first (:func:`concept_rank`). None without concept maps. A kick
    thus lights the kicking leg, where the mean of every concept's map lit the floor; and "raise
    right arm" against "wave right hand", whose only telling concept is the word "lift", lights
    the raised arm (on the development split the foundation's "lift" maps never peaked on a
    moving part, its "foot" and "hand" maps rarely)."""
    if pred.evidence_maps is None or not pred.evidence:
        return None
    telling = {e.text for e in pred.contrast.own} if pred.contrast is not None else set()
    return min(range(len(pred.evidence)), key=lambda i: concept_rank(pred.evidence[i], pred.evidence[i].text in telling))


def first_map(pred: Prediction) -> tuple[str | None, str | None]:
    """(kind, name among ``heatmap_choices``) of the map to show first: the most telling concept
    the clip shows (:func:`telling_concept`), else "all" of the first kind the prediction has
    maps of; (None, None) when it has none."""
    telling = telling_concept(pred)
    if telling is not None:
        return "evidence", heatmap_choices(pred, "evidence")[telling + 1]
    kinds = [k for k in HEATMAP_KINDS if heatmap_choices(pred, k)]
    return (kinds[0], heatmap_choices(pred, kinds[0])[0]) if kinds else (None, None)


def _sum_to_one(maps: np.ndarray) -> np.ndarray:
    total = maps.sum(axis=(-2, -1), keepdims=True)
    return np.divide(maps, total, out=np.zeros_like(maps), where=total > 0)


def _frame_maps(pred: Prediction, maps: np.ndarray | None) -> np.ndarray | None:
    if maps is None:
        return None
    return _sum_to_one(to_frame(maps, pred.frames.shape[1:3]))


def region_heatmaps(pred: Prediction) -> np.ndarray | None:
    """Multi-region attention maps on the frames: [T, R, H, W], each sums to 1.

    None when the model has no MRA module (training-free mode).
    """
    return _frame_maps(pred, pred.region_maps)


def unit_heatmaps(pred: Prediction) -> np.ndarray | None:
    """Where each selected semantic unit is in each frame: [T, K, H, W], each sums to 1.

    Units are in the order of ``pred.units``; None when no unit was selected.
    """
    return _frame_maps(pred, pred.unit_maps)


def heatmap_choices(pred: Prediction, kind: str) -> list[str]:
    """Names of the maps of one kind, for a picker: "all ..." first, then one per map."""
    if kind == "evidence":
        if pred.evidence_maps is None:
            return []
        return ["all concepts", *(_named(e) for e in pred.evidence)]
    if kind == "regions":
        count = 0 if pred.region_maps is None else pred.region_maps.shape[1]
        return ["all regions", *(f"region {r + 1}" for r in range(count))] if count else []
    if kind == "units":
        return ["all units", *(f"{u.text} ({u.type.replace('_', ' ')})" for u in pred.units)] if pred.units else []
    if kind == "rival":  # the concepts only the contrasted rival needs
        if pred.contrast is None or pred.contrast.rival_maps is None or not pred.contrast.rival_own:
            return []
        return ["all the rival's own concepts", *(_named(e) for e in pred.contrast.rival_own)]
    raise ValueError(f"kind must be one of {HEATMAP_KINDS}, got {kind!r}")


def _named(e) -> str:
    return f"{e.text} ({e.type.replace('_', ' ')}, {'shown' if e.present else 'not shown'})"


def heatmaps(pred: Prediction, kind: str, which: int | None = None) -> np.ndarray | None:
    """One map per frame [T, H, W] summing to 1: map ``which`` of ``kind``, or their mean if None.

    ``which`` indexes the maps (concepts in ``pred.evidence`` order, regions, units in
    ``pred.units`` order, or the rival's own concepts in ``pred.contrast.rival_own`` order). None when the prediction has no maps of that kind.
    """
    if kind not in HEATMAP_KINDS:
        raise ValueError(f"kind must be one of {HEATMAP_KINDS}, got {kind!r}")
    rival = pred.contrast.rival_maps if pred.contrast is not None else None
    maps = {"evidence": pred.evidence_maps, "regions": pred.region_maps, "units": pred.unit_maps, "rival": rival}[kind]
    if maps is None:
        return None
    # Mean on the grid first: upsampling is linear, so this equals the mean of the frame maps.
    grid = maps.mean(axis=1) if which is None else maps[:, which]
    return _frame_maps(pred, grid)


def heatmap_caption(pred: Prediction, kind: str, which: int | None = None) -> str:
    """One line on what map ``which`` of ``kind`` (their mean if None) shows, for a caption;
    for the regions of a model without MRA, that it has none."""
    if kind == "regions":
        if pred.region_maps is None:
            return NO_REGIONS
        what = "the mean of the region maps" if which is None else f"region {which + 1}"
        return (f"{what} of multi-region attention: where the model pools its region features from "
                "(bright = most of the region's attention)")
    if kind in ("evidence", "units", "rival"):
        how = HEATMAP_METHODS[pred.heatmap_method].split(":")[0]
        if kind == "rival":  # the rival is named above the maps: a typed label stays out of the caption
            if not heatmap_choices(pred, "rival"):
                return NO_RIVAL_MAPS
            if which is None:
                return f"the mean of the maps of the concepts only the rival action needs ({how})"
            return (f"where \"{pred.contrast.rival_own[which].text}\", a concept only the rival action needs, "
                    f"matches in the frame ({how}; bright = best match)")
        if kind == "evidence":
            if pred.evidence_maps is None:
                return NO_EVIDENCE_MAPS if pred.evidence else NO_EVIDENCE
            # The action is named above the maps: a typed label stays out of the caption.
            if which is None:
                return (f"the mean of the maps of the top action's own concepts ({how}): "
                        "where the clip shows them together")
            return (f"where \"{pred.evidence[which].text}\", a concept of the top action, matches in "
                    f"the frame ({how}; bright = best match)")
        if which is None:
            return f"the mean of the selected units' maps ({how}): where they match together"
        return f"where the unit \"{pred.units[which].text}\" matches in the frame ({how}; bright = best match)"
    raise ValueError(f"kind must be one of {HEATMAP_KINDS}, got {kind!r}")


def text_heatmaps(predictor: Predictor, pred: Prediction, texts: list[str], method: str | None = None,
                  labels: LabelSet | None = None) -> np.ndarray:
    """Maps [T, K, H, W] of ``texts`` on the prediction's frames, each in [0, 1] with 1 at its peak.

    ``method``: one of ``kgclip_core.heatmaps.HEATMAP_METHODS``, by default the Predictor's. The
    texts are embedded as the model embeds its units (cached), the frames are the ones the
    prediction sampled; the maps are placed on the frames like every other map here.
    ``labels``: the label set whose concepts ``surgery`` contrasts the texts with, by default
    the prediction's, by name (pass a typed label set itself).
    """
    backbone = predictor.backbone
    method = method or predictor.cfg.heatmap_method
    emb = F.normalize(backbone.encode_text(texts), dim=-1)
    concepts = None
    if method == "surgery":
        if labels is None:
            try:
                labels = predictor.resolve_labels(pred.label_set)
            except LabelError as err:
                raise LabelError(f"The surgery maps contrast the texts with the label set's concepts; pass a typed "
                                 f"label set as labels= ({err})") from None
        concepts = predictor.classes(labels)[1].unit_emb
    maps = text_maps(backbone, backbone.preprocess(pred.frames), emb, method, concepts=concepts)
    return to_frame(maps.cpu().numpy(), pred.frames.shape[1:3])
