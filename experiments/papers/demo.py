"""The demo checkpoint (``checkpoints/synthetic``) and the example clips (``assets/examples``).

The full KG-CLIP model, every head on, fine-tuned from the foundation on all the training
clips as the grid's runs are (both towers, the papers' optimiser, KG descriptions as class
text), only longer; exported in the Predictor's checkpoint format with the ``synthetic``
label set and its knowledge graph. It is then checked twice: on the test split's clips
(the grid's evaluation path) and through the app's own path, fresh clips (a seed no other
set uses) written as videos and classified by ``Predictor.from_checkpoint``. The examples
shipped are up to ``NUM_EXAMPLES`` of those fresh clips it gets right, evenly spaced in label
order so that they show different body parts.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from kgclip_core.labels import load_label_set
from kgclip_core.model.kgclip import ClassFeatures, KGClipModel
from kgclip_core.predictor import Predictor
from kgclip_core.synth import SYNTHETIC, render_clip, write_video
from kgclip_core.synth.dataset import clip_seed, slug
from kgclip_core.training.checkpointing import export_predictor
from experiments.papers.setup import SETTINGS, Clips, GridRun
from experiments.testbed.data import ClipSet
from experiments.testbed.train import accuracy, label_classes, train_model

log = logging.getLogger(__name__)

CHECKPOINT_DIR = Path("checkpoints/synthetic")
EXAMPLES_DIR = Path("assets/examples")
DEMO_STEPS = 800
EXAMPLE_SEED = 7  # no training or evaluation set uses it: these clips are new to the model
FRESH_PER_CLASS = 1
NUM_EXAMPLES = 8


def build(clips: Clips, work: Path) -> dict:
    """Train, export and check the demo checkpoint; write the examples; return its summary."""
    summary_path = work / "demo.json"
    spec = replace(GridRun("full KG-CLIP", SETTINGS[0], seed=0).spec(), steps=DEMO_STEPS)
    if summary_path.is_file() and json.loads(summary_path.read_text())["steps"] == spec.steps:
        return json.loads(summary_path.read_text())
    start = time.perf_counter()
    model, kg = train_model(spec, clips.train)
    seconds = time.perf_counter() - start
    _, classes = label_classes(model, "synthetic")
    test = accuracy(model, clips.eval["test/synthetic"], classes)
    export_predictor(model, CHECKPOINT_DIR, kg.to_json(), list(load_label_set("synthetic").classes))
    size_mb = sum(f.stat().st_size for f in CHECKPOINT_DIR.iterdir()) / 2**20
    summary = {"steps": spec.steps, "batch_size": spec.batch_size, "lr": spec.optim.lr, "train_seconds": round(seconds),
               "test": test, "test_clips": len(clips.eval["test/synthetic"]), "size_mb": round(size_mb, 1),
               "selection": selection_agreement(model, clips.eval["test/synthetic"], classes),
               "fresh": check_fresh_clips(CHECKPOINT_DIR, EXAMPLES_DIR)}
    summary_path.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    log.info("demo checkpoint: test %s, fresh clips %s", test, summary["fresh"]["correct"])
    return summary


@torch.no_grad()
def selection_agreement(model: KGClipModel, clips: ClipSet, classes: ClassFeatures, batch: int = 32) -> dict:
    """Of the semantic units the model selects for a correctly classified clip, the share that
    belong to its true class: per video (what the app shows) and per frame (ASU's selection)."""
    hits = {"video": [0, 0], "frame": [0, 0]}
    t = model.cfg.num_frames
    for start in range(0, len(clips), batch):
        idx = list(range(start, min(start + batch, len(clips))))
        out = model.score(model.encode_video(clips.clips(idx, t, None)), classes, explain=False)
        frame_idx = out.su.frame_scores.topk(out.su.indices.shape[1], dim=-1).indices  # [B, T, K]
        for b, label in enumerate(clips.labels[idx].tolist()):
            if int(out.logits[b].argmax()) != label:
                continue
            own = classes.class_unit_mask[label]
            for name, chosen in (("video", out.su.indices[b]), ("frame", frame_idx[b].flatten())):
                hits[name][0] += int(own[chosen].sum())
                hits[name][1] += chosen.numel()
    return {name: round(100.0 * h / max(n, 1), 1) for name, (h, n) in hits.items()}


def check_fresh_clips(checkpoint: Path, examples: Path) -> dict:
    """Classify fresh clips of every class with the Predictor; copy some correct ones to ``examples``."""
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    for old in examples.glob("*.mp4"):
        old.unlink()
    examples.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for action in SYNTHETIC:
            for k in range(FRESH_PER_CLASS):
                frames, truth = render_clip(action, clip_seed(EXAMPLE_SEED, action.name, k))
                path = Path(tmp) / f"{slug(action.name)}_{k}.mp4"
                write_video(path, frames, truth["fps"])
                results.setdefault(action.name, []).append(predictor.predict(path).class_names[0])
        right = [a for a, preds in results.items() if preds[0] == a]
        picks = np.unique(np.linspace(0, len(right) - 1, min(NUM_EXAMPLES, len(right))).round().astype(int))
        shipped = [right[i] for i in picks] if right else []
        for name in shipped:
            shutil.copy(Path(tmp) / f"{slug(name)}_0.mp4", examples / f"{slug(name)}.mp4")
    correct = sum(p == a for a, preds in results.items() for p in preds)
    return {"correct": f"{correct}/{sum(map(len, results.values()))}", "predictions": results, "shipped": shipped}
