"""Render the synthetic data sets once and cache every frame exactly as the model sees it.

The papers' grid and its demo train from these cached clips. Training from the written videos
through the library's decoding path each epoch would cost more CPU than the runs themselves;
instead every clip is decoded once, the way the Predictor reads it (``read_clip`` at short side
256, then the backbone's resize, centre crop and CLIP normalisation), and kept as float16. A run
then samples frame indices (TSN segments, as the library does) from the cached frames.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from kgclip_core.backbone import ClipBackbone
from kgclip_core.predictor import PredictorConfig
from kgclip_core.synth import read_ground_truth, write_dataset
from kgclip_core.training.datasets import Sample
from kgclip_core.video import read_clip, sample_indices

log = logging.getLogger(__name__)

CROP_AREA = (0.6, 1.0)  # training crops: a square of this share of the frame, resized back


def random_crop(clip: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """One random square crop of a clip [T, 3, S, S], resized back to S (no flip: left and
    right are different classes here), and the crop (top, left, side) in the clip's pixels."""
    size = clip.shape[-1]
    side = max(8, round(size * math.sqrt(rng.uniform(*CROP_AREA))))
    top, left = (int(v) for v in rng.integers(0, size - side + 1, size=2))
    return TF.resized_crop(clip, top, left, side, side, [size, size], antialias=True), (top, left, side)


@dataclass
class View:
    """How one training clip was sampled: which cached frames, and the square crop taken
    (top, left, side in the cached frames' pixels; the whole frame in evaluation)."""

    frames: np.ndarray
    crop: tuple[int, int, int]


@dataclass
class ClipSet:
    """Cached clips of one data set: preprocessed frames, labels and ground truth."""

    frames: torch.Tensor  # [N, F, 3, S, S] float16, CLIP-normalised
    labels: torch.Tensor  # [N] class indices of the data set's label set
    paths: list[str]  # absolute video paths
    truth: list[dict]  # per-clip ground truth (see kgclip_core.synth.render)
    classes: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: list[int] | np.ndarray) -> ClipSet:
        """The clips at ``indices``, in that order."""
        idx = [int(i) for i in indices]
        return ClipSet(self.frames[idx], self.labels[idx], [self.paths[i] for i in idx],
                       [self.truth[i] for i in idx], self.classes)

    def samples(self) -> list[Sample]:
        """The clips as training samples (for the library's few-shot split)."""
        return [Sample(p, int(y)) for p, y in zip(self.paths, self.labels.tolist())]

    def clips(self, indices: torch.Tensor | list[int], num_frames: int, rng: np.random.Generator | None,
              views: list[View] | None = None) -> torch.Tensor:
        """float32 [B, T, 3, S, S]: TSN-sampled frames; with ``rng``, random frames of each
        segment and a random crop per clip (training), else segment centres (evaluation).
        ``views``, when given, receives how each clip was sampled (to place its ground truth)."""
        total, size = self.frames.shape[1], self.frames.shape[-1]
        out = []
        for i in torch.as_tensor(indices).tolist():
            mode = "train" if rng is not None else "test"
            frames = sample_indices(total, num_frames, mode, rng=rng)[0]
            clip, crop = self.frames[i, torch.from_numpy(frames)].float(), (0, 0, size)
            if rng is not None:
                clip, crop = random_crop(clip, rng)
            out.append(clip)
            if views is not None:
                views.append(View(frames, crop))
        return torch.stack(out)


def ensure_dataset(out_dir: Path, label_set: str, per_class: int, seed: int, val_fraction: float) -> Path:
    """Write the data set unless ``out_dir`` already holds one made with the same settings."""
    meta = out_dir / "meta.json"
    if meta.is_file():
        m = json.loads(meta.read_text(encoding="utf-8"))
        if (m["label_set"], m["per_class"], m["seed"], m["val_fraction"]) == (label_set, per_class, seed, val_fraction):
            return out_dir
    log.info("rendering %s: %d clips per class", label_set, per_class)
    write_dataset(out_dir, per_class=per_class, seed=seed, classes=label_set, val_fraction=val_fraction)
    return out_dir


@torch.no_grad()
def load_clip_set(data_dir: Path, backbone: ClipBackbone, split: str | None = None) -> ClipSet:
    """Decode every clip of a written data set once (optionally only one split)."""
    classes = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))["classes"]
    records = [r for r in read_ground_truth(data_dir) if split is None or r["split"] == split]
    frames, labels, paths = [], [], []
    for rec in records:
        path = data_dir / rec["path"]
        clip = read_clip(path, rec["num_frames"], short_side=PredictorConfig.short_side)  # as the app reads
        frames.append(backbone.preprocess(clip.frames[0]).half())
        labels.append(rec["label"])
        paths.append(str(path))
    return ClipSet(torch.stack(frames), torch.tensor(labels), paths, records, classes)
