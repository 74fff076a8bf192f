"""Measure one split: every clip through the Predictor as the app runs it, held against ground truth.

Per clip, one row: the top three classes and whether the first is right; for every concept of
those three classes, its probability, its mark and whether the clip's sampled frames really show
it; the contrast with the runner-up, each telling concept's mark against the truth; the first map
shown (``explain.telling_concept``): does its peak fall on a moving part, and how much does the
concept's score drop when the map's top 10% of patches are hidden, against a random 10% and
occlusion's own top 10%; the fit score and the "not sure" flag. Real clips (``../shared/clips``,
test split only) have no ground truth: only their fit and flag are kept.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

import numpy as np
import torch

from kgclip_core import heatmaps
from kgclip_core.contrast import contrast, rival_units
from kgclip_core.evidence import concepts_of, fit_score, mark_concepts
from kgclip_core.explain.maps import telling_concept
from kgclip_core.labels import LabelSet
from kgclip_core.model.concept_detector import concept_features
from kgclip_core.model.kgclip import ClassFeatures
from kgclip_core.predictor import Predictor
from kgclip_core.synth.regions import EXCLUDED_PARTS, boxes_mask, cells_touched
from kgclip_core.synth.render import active_parts
from kgclip_core.video import read_clip
from experiments import jsonl
from experiments.explanations.clips import ClipTruth, presence, rendered
from experiments.explanations.common import CLIPS, LABELS, REAL, ROWS, load_model
from experiments.weights import digest

log = logging.getLogger(__name__)
SHARED_CLIPS = Path(__file__).resolve().parents[3] / "shared" / "clips"
HIDDEN = 0.1  # the share of each frame's patches hidden when a map's region is removed
TIMING_CLIPS, TIMING_REPEATS = 8, 5


def real_clips() -> list[Path]:
    """The real labelled clips beside the repository (test data, read in place)."""
    with open(SHARED_CLIPS / "manifest.csv", newline="", encoding="utf-8") as f:
        return [SHARED_CLIPS / row["path"] for row in csv.DictReader(f)]


def measure(name: str, split: str, work: Path) -> None:
    """Append a row per clip of ``split`` for model ``name``, unless its rows for these weights
    are there already (a split is measured once: the test split is read at the end, once)."""
    predictor = load_model(name)
    if predictor.detector is None:
        raise SystemExit(f"{name} has no concept detector yet: run `--only detector` first.")
    key = {"model": name, "split": split, "detector": digest(Path(predictor.cfg.concept_detector))}
    if any(all(r.get(k) == v for k, v in key.items()) for r in jsonl.read(ROWS / CLIPS)):
        log.info("%s %s: measured already", name, split)
        return
    labels = predictor.resolve_labels(LABELS)
    kg, classes = predictor.classes(labels)
    populations = {"own": rendered(work, split, "own"), "novel": rendered(work, split, "novel")}
    if split == "test":
        populations[REAL] = real_clips()
    for population, clips in populations.items():
        for i, clip in enumerate(clips):
            row = {**key, "population": population}
            if population == REAL:
                pred = predictor.predict(clip, labels=labels, top_k=3)
                row.update(clip=clip.name, top3=pred.class_names, fit=pred.fit, unsure=pred.unsure)
            else:
                row.update(_clip_row(predictor, kg, classes, labels, clip, seed=i))
            if population == "own" and i < TIMING_CLIPS:
                row["timing"] = _timing(predictor, classes, labels, clip.path)
            jsonl.append(ROWS / CLIPS, row)
        log.info("%s %s %s: %d clips", name, split, population, len(clips))


def _clip_row(predictor: Predictor, kg, classes: ClassFeatures, labels: LabelSet, clip: ClipTruth, seed: int) -> dict:
    pred = predictor.predict(clip.path, labels=labels, top_k=3)
    concepts = list(zip(classes.unit_texts, classes.unit_types))
    shown = presence(clip, kg, concepts, pred.frame_indices)  # [T, U]
    probability = pred.concept_scores.max(0)
    units = sorted({u for c in pred.class_indices for u in concepts_of(classes, c)})
    top, rival = pred.class_indices[0], pred.contrast.rival_index
    movements = {u for u in concepts_of(classes, top) if classes.unit_types[u] == "movement"}
    row = {"clip": clip.path.name, "action": clip.action.name, "top3": pred.class_names,
           "correct": pred.class_names[0] == clip.action.name, "fit": pred.fit, "unsure": pred.unsure,
           "concepts": [[classes.unit_texts[u], classes.unit_types[u], round(float(probability[u]), 4),
                         bool(probability[u] >= pred.evidence_threshold), bool(shown[:, u].any())] for u in units],
           "contrast": {"rival": pred.contrast.rival,
                        "shares_movement": bool(movements & set(concepts_of(classes, rival))),
                        "telling": [[e.text, side, e.present, bool(shown[:, classes.unit_texts.index(e.text)].any())]
                                    for side, items in (("own", pred.contrast.own), ("rival", pred.contrast.rival_own))
                                    for e in items]}}
    first = telling_concept(pred)
    if first is not None:
        row["first_map"] = _first_map(predictor, pred, classes, clip, first, seed)
    return row


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
def _first_map(predictor: Predictor, pred, classes: ClassFeatures, clip: ClipTruth, index: int, seed: int) -> dict:
    """Does the first map point at a moving part, and does hiding its top patches lower the
    concept's evidence (the detector's mean frame logit) and the class's logit, against a random
    draw of as many patches and against occlusion's own top patches."""
    evidence = pred.evidence[index]
    maps = pred.evidence_maps[:, index]  # [T, h, w]
    grid = maps.shape[-2:]
    images = predictor.backbone.preprocess(pred.frames)  # [T, 3, S, S]
    size = images.shape[-1]
    hits = [bool(c[np.unravel_index(int(np.argmax(m)), m.shape)]) for m, c in
            zip(maps, _moving_cells(clip, pred.frame_indices, size, grid)) if c is not None]
    detector = predictor.detector
    column = detector.index([evidence.text])[0]

    def concept_score(x: torch.Tensor) -> torch.Tensor:  # [N, 3, S, S] -> each frame's logit [N]
        video = predictor.model.encode_video(x[None])
        return detector.frame_logits(concept_features(video.frames[0], video.patches[0], video.grid))[:, column]

    def class_score(x: torch.Tensor) -> float:
        return float(predictor.model.score(predictor.model.encode_video(x[None]), _classes_of(predictor), explain=False)
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


def _classes_of(predictor: Predictor) -> ClassFeatures:
    return predictor.classes(predictor.resolve_labels(LABELS))[1]


def _hide(images: torch.Tensor, cells: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """``images`` with, in each frame, the patches ``cells`` [T, k] set to the mean colour (0 after
    CLIP's normalisation)."""
    out = images.clone()
    ph, pw = images.shape[-2] // grid[0], images.shape[-1] // grid[1]
    for t, chosen in enumerate(cells):
        for c in chosen:
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


@torch.no_grad()
def _timing(predictor: Predictor, classes: ClassFeatures, labels: LabelSet, path: Path) -> dict:
    """Best-of times (ms) of a whole prediction and of what this experiment's explanations add to
    it: marking every concept, the contrast and the rival's maps."""
    whole = min(_timed(lambda: predictor.predict(path, labels=labels, top_k=3)) for _ in range(TIMING_REPEATS))
    model, backbone = predictor.model, predictor.backbone
    images = backbone.preprocess(read_clip(path, predictor.cfg.num_frames, short_side=predictor.cfg.short_side)
                                 .frames[0])[None]
    video = model.encode_video(images)
    out = model.score(video, classes, explain=True)
    pred = predictor.predict(path, labels=labels, top_k=3)

    top = pred.class_indices[0]

    def added() -> None:
        marks = mark_concepts(video, out, classes, predictor.detector)
        result = contrast(marks, classes, labels, top, pred.contrast.rival_index)
        fit_score(marks, classes, top)
        units = rival_units(classes, result)
        if units:
            heatmaps.text_maps(backbone, images[0], classes.unit_emb[units], predictor.cfg.heatmap_method,
                               patches=video.patches[0], concepts=classes.unit_emb)

    extra = min(_timed(added) for _ in range(TIMING_REPEATS))
    return {"predict_ms": whole, "added_ms": extra}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - start)
