"""Measure the heatmap methods on the synthetic ground truth and time them, appending rows to the
work folder (``common.RESULTS``, ``DETECTION``, ``TIMING``).

Models: the foundation (training-free) and the demo checkpoint. Clips: fresh ``synthetic`` clips
written as mp4 and read back as the app reads an upload, a development split (data-set seed
3000, for choosing the default method) and a test split (seed 4000, reported). Every (model,
split) result and every timing is kept under the model's weights hash, so a rerun skips what is
done and a retrained checkpoint is measured afresh.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from kgclip_core import heatmaps
from kgclip_core.heatmaps.attention import LastBlockQKV
from kgclip_core.predictor import Predictor, PredictorConfig
from kgclip_core.synth.actions import label_set_actions
from kgclip_core.synth.dataset import read_ground_truth
from kgclip_core.synth.foundation import foundation_predictor
from kgclip_core.synth.zeroshot import render_eval_clips
from kgclip_core.video import read_clip
from experiments import jsonl
from experiments.heatmaps.common import DETECTION, LABELS, PER_CLASS, RESULTS, SPLIT_SEEDS, TIMING
from experiments.heatmaps.measure import detection_auc, frame_unit_cosines, named_units, score_clip
from experiments.weights import digest

log = logging.getLogger(__name__)

LABEL_ACTIONS = [a.name for a in label_set_actions(LABELS)]
TIMING_CLIPS, TIMING_REPEATS = 3, 7


def load_models(foundation: Path, checkpoint: Path) -> dict[str, tuple[Predictor, str]]:
    """The two models by name, each with a hash of its weights (the cache key of its results)."""
    models = {}
    if foundation.is_file():
        models["foundation"] = (foundation_predictor(foundation, device="cpu"), digest(foundation))
    if (checkpoint / "model.safetensors").is_file():
        models["demo checkpoint"] = (Predictor.from_checkpoint(checkpoint, device="cpu"),
                                     digest(checkpoint / "model.safetensors"))
    return models


def split_clips(work: Path, predictor: Predictor, split: str) -> Iterator[tuple[dict, np.ndarray, list[int], torch.Tensor]]:
    """The split's clips as the app reads them: (ground truth, frames, sampled frame numbers, images)."""
    clips_dir = work / "clips" / split
    clips = render_eval_clips(clips_dir, LABELS, PER_CLASS, SPLIT_SEEDS[split])
    for path, truth in zip(clips.paths, read_ground_truth(clips_dir)):
        clip = read_clip(path, predictor.cfg.num_frames, short_side=PredictorConfig.short_side)
        yield truth, clip.frames[0], clip.indices[0].tolist(), predictor.backbone.preprocess(clip.frames[0])


def unit_embeddings(predictor: Predictor) -> dict:
    _, classes = predictor.classes(predictor.resolve_labels(LABELS))
    return dict(zip(classes.unit_texts, classes.unit_emb))


def measure(work: Path, model: str, predictor: Predictor, digest: str, split: str) -> None:
    """Pointing game and deletion/insertion of every method on one split (cached per weights)."""
    if any(r["digest"] == digest and r["split"] == split for r in jsonl.read(work / RESULTS)):
        return
    unit_emb, rng, start = unit_embeddings(predictor), np.random.default_rng(0), time.perf_counter()
    pairs, clips = [], 0
    for truth, frames, indices, images in split_clips(work, predictor, split):
        pairs += score_clip(predictor.backbone, images, frames.shape[1:3], truth, indices, unit_emb,
                            list(heatmaps.HEATMAP_METHODS), rng)
        clips += 1
    row = {"model": model, "digest": digest, "split": split, "clips": clips,
           "grid": list(predictor.backbone.grid_size), "seconds": round(time.perf_counter() - start, 1), "pairs": pairs}
    log.info("%s %s: %d (frame, unit) pairs in %.0f s", model, split, len(pairs), row["seconds"])
    jsonl.append(work / RESULTS, row)


def detect(work: Path, model: str, predictor: Predictor, digest: str, split: str) -> None:
    """ROC AUC per body part of the frame's cosine with each unit (cached per weights)."""
    if any(r["digest"] == digest and r["split"] == split for r in jsonl.read(work / DETECTION)):
        return
    unit_emb = unit_embeddings(predictor)
    units = {u.text: u for action in LABEL_ACTIONS for u in named_units(action) if u.text in unit_emb}
    cosines = []
    for truth, _, indices, images in split_clips(work, predictor, split):
        cosines += frame_unit_cosines(predictor.backbone, images, truth, indices, units, unit_emb)
    jsonl.append(work / DETECTION, {"model": model, "digest": digest, "split": split, "auc": detection_auc(cosines)})


def _best_ms(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def timing(work: Path, model: str, predictor: Predictor, digest: str) -> None:
    """What each method costs on CPU: a warm prediction with the method making the unit maps (per
    clip the best of interleaved runs, since other jobs only ever add time, averaged over clips),
    and the maps alone for one prediction's units (best of a few runs; the attention-path methods
    reusing the recorded forward pass, as the Predictor does)."""
    if any(r["digest"] == digest for r in jsonl.read(work / TIMING)):
        return
    paths = render_eval_clips(work / "clips" / "dev", LABELS, PER_CLASS, SPLIT_SEEDS["dev"]).paths[:TIMING_CLIPS]
    methods, default = list(heatmaps.HEATMAP_METHODS), predictor.cfg.heatmap_method
    pred = predictor.predict(paths[0], labels=LABELS)  # warm: the label set embedded, the code paths loaded
    load = os.getloadavg()[0]
    best = {(m, path): float("inf") for m in methods for path in paths}
    for _ in range(TIMING_REPEATS):
        for path in paths:
            for m in methods:
                predictor.cfg.heatmap_method = m
                start = time.perf_counter()
                predictor.predict(path, labels=LABELS)
                best[m, path] = min(best[m, path], time.perf_counter() - start)
    predictor.cfg.heatmap_method = default
    backbone, unit_emb = predictor.backbone, unit_embeddings(predictor)
    images, texts = backbone.preprocess(pred.frames), torch.stack([unit_emb[u.text] for u in pred.units])
    concepts = torch.stack(list(unit_emb.values()))
    with LastBlockQKV(backbone.model.visual) as recorded, torch.no_grad():
        _, patches = backbone.encode_frames(images)
    maps_ms = {m: _best_ms(lambda m=m: heatmaps.text_maps(backbone, images, texts, m,
                                                          recorded if m in heatmaps.ATTENTION_PATH else None,
                                                          patches=patches, concepts=concepts),
                           TIMING_REPEATS if m in heatmaps.SINGLE_PASS else 2)
               for m in methods}
    row = {"model": model, "digest": digest, "units": len(pred.units), "threads": torch.get_num_threads(),
           "load": load, "ms": {m: 1000 * statistics.mean(best[m, p] for p in paths) for m in methods},
           "maps_ms": maps_ms}
    log.info("%s timing: %s, maps alone %s", model, row["ms"], maps_ms)
    jsonl.append(work / TIMING, row)
