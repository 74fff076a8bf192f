"""The first map shown, measured on its own rows (``rows/first_maps.jsonl``), one per clip of the
24 classes, under the rule that chose it (``explain.maps.FIRST_MAP_RULE``).

Per clip: every concept of the top action with its mark, whether it tells the top action from the
runner-up, and in how many of the frames where a part moves its map peaks on a moving part; and
for the map the app shows first (``explain.telling_concept``), where it peaks frame by frame and
how much the concept's score (the detector's mean frame logit) and the class's logit drop when
its top 10% of patches are hidden, against a random 10% and occlusion's own top 10%. Rules that
order the concepts otherwise (:data:`RULES`) are compared on the development split from the
first part of the rows, without measuring again; the drops need the rule's own measurement.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from kgclip_core.explain.maps import FIRST_MAP_RULE, concept_rank, telling_concept, type_rank
from kgclip_core.model.concept_detector import concept_features
from kgclip_core.model.kgclip import ClassFeatures
from kgclip_core.prediction import Evidence, Prediction
from kgclip_core.predictor import Predictor
from kgclip_core.synth.regions import EXCLUDED_PARTS, boxes_mask, cells_touched
from kgclip_core.synth.render import active_parts
from experiments import jsonl
from experiments.explanations.clips import ClipTruth, rendered
from experiments.explanations.common import FIRST_MAPS, LABELS, ROWS, load_model
from experiments.weights import digest

log = logging.getLogger(__name__)
HIDDEN = 0.1  # the share of each frame's patches hidden when a map's region is removed


def _type_first(e: Evidence, telling: bool) -> tuple:
    # The rule shipped before: shown, type, telling, score (a whole-body or hand concept like any other).
    return not e.present, type_rank(e.type), not telling, -e.score


def _whole_body_last(e: Evidence, telling: bool) -> tuple:
    # The same, a concept of the whole body after those of one part.
    return (not e.present, e.text.startswith("whole body"), *_type_first(e, telling)[1:])


# The orderings compared on the development split (sort keys, smallest first): those tried, and
# the shipped rule (``explain.maps.concept_rank``, named by FIRST_MAP_RULE).
RULES: dict[str, Callable[[Evidence, bool], tuple]] = {
    "specific type, telling first": _type_first,
    "a part before the whole body": _whole_body_last,
    FIRST_MAP_RULE: concept_rank,
}


def measure(name: str, split: str, work: Path) -> None:
    """Append a row per clip of the 24 classes of ``split`` for model ``name``, unless its rows for
    this detector and first-map rule are there already (a split is read once per rule)."""
    predictor = load_model(name)
    key = {"model": name, "split": split, "detector": digest(Path(predictor.cfg.concept_detector)),
           "rule": FIRST_MAP_RULE}
    if any(all(r.get(k) == v for k, v in key.items()) for r in jsonl.read(ROWS / FIRST_MAPS)):
        log.info("%s %s: first maps measured already under this rule", name, split)
        return
    labels = predictor.resolve_labels(LABELS)
    _, classes = predictor.classes(labels)
    clips = rendered(work, "maps-test" if split == "test" else split, "own")
    for i, clip in enumerate(clips):
        pred = predictor.predict(clip.path, labels=labels, top_k=3)
        candidates = _candidates(pred, clip, predictor.backbone.image_size)
        row = {**key, "clip": clip.path.name, "action": clip.action.name, "top": pred.class_names[0],
               "candidates": candidates}
        first = telling_concept(pred)
        if first is not None:  # candidates are in pred.evidence order: its hits are the first map's
            row["first_map"] = _first_map(predictor, pred, classes, first, candidates[first]["hits"], seed=i)
        jsonl.append(ROWS / FIRST_MAPS, row)
    log.info("%s %s: first maps of %d clips", name, split, len(clips))


def chosen(row: dict, rule: str) -> dict | None:
    """The candidate of ``row`` that ``rule`` (a name in :data:`RULES`) shows first."""
    if not row["candidates"]:
        return None
    rank = RULES[rule]
    return min(row["candidates"], key=lambda c: rank(Evidence(c["text"], c["type"], c["score"], [], 0, c["present"]),
                                                     c["telling"]))


def _candidates(pred: Prediction, clip: ClipTruth, size: int) -> list[dict]:
    """Every concept of the top action, with its mark and its map's peak on a moving part."""
    if pred.evidence_maps is None:
        return []
    telling = {e.text for e in pred.contrast.own} if pred.contrast is not None else set()
    cells = _moving_cells(clip, pred.frame_indices, size, pred.evidence_maps.shape[-2:])
    return [{"text": e.text, "type": e.type, "score": round(e.score, 4), "present": e.present,
             "telling": e.text in telling, "hits": _hits(pred.evidence_maps[:, i], cells)}
            for i, e in enumerate(pred.evidence)]


def _hits(maps: np.ndarray, cells: list[np.ndarray | None]) -> list[bool]:
    """Per frame where a part moves: does the map [T, h, w] peak on a cell a moving part touches."""
    return [bool(c[np.unravel_index(int(np.argmax(m)), m.shape)]) for m, c in zip(maps, cells) if c is not None]


def _moving_cells(clip: ClipTruth, frames: list[int], size: int, grid: tuple[int, int]) -> list[np.ndarray | None]:
    """Per sampled frame, the patch cells a moving part's box touches (None: nothing moves)."""
    cells = []
    for f in frames:
        truth = clip.truth["frames"][f]
        boxes = [truth["parts"][k]["box"] for k in active_parts(truth) if k not in EXCLUDED_PARTS
                 and truth["parts"][k]["box"] is not None]
        scale = size / clip.truth["size"][0]
        cells.append(cells_touched(boxes_mask(boxes, (size, size), scale), grid) if boxes else None)
    return cells


@torch.no_grad()
def _first_map(predictor: Predictor, pred: Prediction, classes: ClassFeatures, index: int, hits: list[bool],
               seed: int) -> dict:
    """Does the first map point at a moving part, and does hiding its top patches lower the
    concept's evidence and the class's logit, against a random draw of as many patches and
    against occlusion's own top patches."""
    evidence = pred.evidence[index]
    maps = pred.evidence_maps[:, index]  # [T, h, w]
    grid = maps.shape[-2:]
    images = predictor.backbone.preprocess(pred.frames)  # [T, 3, S, S]
    detector = predictor.detector
    column = detector.index([evidence.text])[0]

    def concept_score(x: torch.Tensor) -> torch.Tensor:  # [N, 3, S, S] -> each frame's logit [N]
        video = predictor.model.encode_video(x[None])
        return detector.frame_logits(concept_features(video.frames[0], video.patches[0], video.grid))[:, column]

    def class_score(x: torch.Tensor) -> float:
        return float(predictor.model.score(predictor.model.encode_video(x[None]), classes, explain=False)
                     .logits[0, pred.class_indices[0]])

    patches = grid[0] * grid[1]
    hide = max(1, round(HIDDEN * patches))
    occlusion = _occlusion(concept_score, images, grid)  # [T, P] drop per hidden patch
    rng = np.random.default_rng(seed)
    orders = {"map": np.argsort(-maps.reshape(len(maps), -1), axis=1),
              "random": np.stack([rng.permutation(patches) for _ in maps]),
              "occlusion": np.argsort(-occlusion, axis=1)}
    base, base_class = float(concept_score(images).mean()), class_score(images)
    out = {"concept": evidence.text, "type": evidence.type, "present": evidence.present, "hits": hits}
    for name, order in orders.items():
        hidden = _hide(images, order[:, :hide], grid)
        out[f"drop_{name}"] = base - float(concept_score(hidden).mean())
        out[f"class_drop_{name}"] = base_class - class_score(hidden)
    return out


def _hide(images: torch.Tensor, cells: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """``images`` with, in each frame, the patches ``cells`` [T, k] set to the mean colour (0 after
    CLIP's normalisation)."""
    out = images.clone()
    ph, pw = images.shape[-2] // grid[0], images.shape[-1] // grid[1]
    for t, cells_t in enumerate(cells):
        for c in cells_t:
            r, col = divmod(int(c), grid[1])
            out[t, :, r * ph:(r + 1) * ph, col * pw:(col + 1) * pw] = 0
    return out


def _occlusion(score, images: torch.Tensor, grid: tuple[int, int]) -> np.ndarray:
    """[T, P]: how much each frame's score drops when one of its patches is hidden."""
    base = score(images)
    drops = np.zeros((len(images), grid[0] * grid[1]))
    for p in range(grid[0] * grid[1]):
        cells = np.full((len(images), 1), p)
        drops[:, p] = (base - score(_hide(images, cells, grid))).numpy()
    return drops
