"""Training-free (zero-shot) accuracy of a pretrained backbone on a synthetic label set.

Clips are written to disk as the data set writer does (mp4) and read back through the
library's decoder and the backbone's preprocessing, exactly as the Predictor reads an upload.
Each clip is encoded once and scored five ways:

- ``name``: the class name in the prompt templates (CLIP's zero-shot classifier);
- ``description``: the class's knowledge-graph description as its one prompt;
- ``units``: the mean of the class's best-matching semantic units (KG movements, parts,
  motions), the training-free SU score alone;
- ``name+units`` and ``description+units``: the training-free model's logits, prompt and
  units averaged (``name+units`` is what the app runs on a pretrained CLIP by default).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from kgclip_core.backbone import ClipBackbone
from kgclip_core.class_inputs import class_inputs
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.labels import custom_label_set, load_label_set
from kgclip_core.model.config import CLASS_TEXTS, ModelConfig
from kgclip_core.model.kgclip import KGClipModel
from kgclip_core.predictor import PredictorConfig
from kgclip_core.synth.actions import label_set_actions
from kgclip_core.synth.dataset import read_ground_truth, write_dataset
from kgclip_core.video import read_clip

MODES = ("name", "description", "units", "name+units", "description+units")


@dataclass
class EvalClips:
    """Fresh clips of a synthetic label set (or of some of its classes) on disk, with their labels."""

    label_set: str
    paths: list[Path]
    labels: list[int]  # indices into ``classes`` (the whole label set when None)
    classes: tuple[str, ...] | None = None


def render_eval_clips(out_dir: str | Path, label_set: str, per_class: int, seed: int,
                      classes: tuple[str, ...] | None = None) -> EvalClips:
    """Write ``per_class`` fresh clips of every class of ``label_set`` (or of ``classes``, some of
    its classes), or reuse them when ``out_dir`` already holds that exact set, and list them."""
    out = Path(out_dir)
    meta = out / "meta.json"
    names = list(classes) if classes else [a.name for a in label_set_actions(label_set)]
    wanted = {"classes": names, "seed": seed, "per_class": per_class}
    written = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
    if any(written.get(k) != v for k, v in wanted.items()):
        write_dataset(out, per_class=per_class, seed=seed, classes=names, val_fraction=0.0)
    truth = read_ground_truth(out)
    return EvalClips(label_set, [out / t["path"] for t in truth], [int(t["label"]) for t in truth], classes)


@torch.no_grad()
def zero_shot_accuracy(backbone: ClipBackbone, clips: EvalClips, num_frames: int = 8) -> dict[str, float]:
    """Top-1 accuracy (%) of each of :data:`MODES` over ``clips``."""
    full = load_label_set(clips.label_set)
    kg = KnowledgeGraph.for_label_set(full)  # the synthetic knowledge, also for a subset of its classes
    labels = full if clips.classes is None else custom_label_set(clips.classes, name=f"{full.name} subset")
    model = KGClipModel(ModelConfig.training_free_preset(backbone=backbone.cfg.model_name, pretrained=None,
                                                        num_frames=num_frames), backbone).eval()
    classes = {text: model.encode_classes(class_inputs(labels, kg, text)) for text in CLASS_TEXTS}
    hits = dict.fromkeys(MODES, 0)
    for path, label in zip(clips.paths, clips.labels):
        # Read as the Predictor reads an upload.
        frames = read_clip(path, num_frames, short_side=PredictorConfig.short_side).frames[0]
        video = model.encode_video(backbone.preprocess(frames)[None])
        for text, feats in classes.items():
            out = model.score(video, feats, explain=False)
            scores = {text: out.terms["video_text"], f"{text}+units": out.logits}
            if text == "name":  # the unit scores do not depend on the class text
                scores["units"] = out.terms["su"]
            for mode, s in scores.items():
                hits[mode] += int(s[0].argmax()) == label
    return {mode: 100.0 * n / len(clips.paths) for mode, n in hits.items()}
