"""Measure one split: every clip through the Predictor as the app runs it, held against ground truth.

Per clip, one row: the top three classes and whether the first is right; for every concept of
those three classes, its probability, its mark and whether the clip's sampled frames really show
it; the contrast with the runner-up, each telling concept's mark against the truth; the fit score
and the "not sure" flag. The first map shown is measured apart (``first_map``), as its rule
changes on its own; rows written before then carry it here too, kept as history. Real clips
(``../shared/clips``, test split only) have no ground truth: only their fit and flag are kept.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path

import torch

from kgclip_core import heatmaps
from kgclip_core.contrast import contrast, rival_units
from kgclip_core.evidence import concepts_of, fit_score, mark_concepts
from kgclip_core.labels import LabelSet
from kgclip_core.model.kgclip import ClassFeatures
from kgclip_core.predictor import Predictor
from kgclip_core.video import read_clip
from experiments import jsonl
from experiments.explanations.clips import ClipTruth, presence, rendered
from experiments.explanations.common import CLIPS, LABELS, REAL, ROWS, load_model
from experiments.weights import digest

log = logging.getLogger(__name__)
SHARED_CLIPS = Path(__file__).resolve().parents[3] / "shared" / "clips"
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
                row.update(_clip_row(predictor, kg, classes, labels, clip))
            if population == "own" and i < TIMING_CLIPS:
                row["timing"] = _timing(predictor, classes, labels, clip.path)
            jsonl.append(ROWS / CLIPS, row)
        log.info("%s %s %s: %d clips", name, split, population, len(clips))


def _clip_row(predictor: Predictor, kg, classes: ClassFeatures, labels: LabelSet, clip: ClipTruth) -> dict:
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
    return row


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
