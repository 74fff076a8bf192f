"""The experiment's clips: fresh renders of the 24 classes, the 8 novel compositions and random
compositions, written as MP4 and read back the way the Predictor reads an upload, with the
concepts each sampled frame really shows (``kgclip_core.synth.concepts``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.model.concept_detector import concept_features
from kgclip_core.model.kgclip import ClassFeatures
from kgclip_core.predictor import Predictor
from kgclip_core.synth.actions import Action, Step, get_action
from kgclip_core.synth.captions import random_composition
from kgclip_core.synth.concepts import concept_presence
from kgclip_core.synth.dataset import read_ground_truth, write_video
from kgclip_core.synth.render import SynthConfig, render_clip
from kgclip_core.synth.zeroshot import render_eval_clips
from kgclip_core.video import read_clip
from experiments.explanations.common import EVAL, TRAIN


@dataclass
class ClipTruth:
    """One rendered clip: its file, its action and its ground truth."""

    path: Path
    action: Action
    truth: dict


def rendered(work: Path, split: str, population: str) -> list[ClipTruth]:
    """The clips of ``population`` ("own": the 24 classes, "novel": the 8 novel compositions,
    "random": random compositions, training only) for ``split``, rendered once into ``work``."""
    if split == "train":
        return [clip for seed, count in TRAIN[population]
                for clip in _render(work / "clips" / f"train-{population}-{seed}", population, seed, count)]
    seed, per_class = EVAL[(split, population)]
    return _render(work / "clips" / f"{split}-{population}-{seed}", population, seed, per_class)


def _render(folder: Path, population: str, seed: int, count: int) -> list[ClipTruth]:
    if population == "random":
        return _random_compositions(folder, seed, count)
    render_eval_clips(folder, "synthetic_novel" if population == "novel" else "synthetic", count, seed)
    return [ClipTruth(folder / t["path"], get_action(t["action"]), t) for t in read_ground_truth(folder)]


def _random_compositions(folder: Path, seed: int, count: int) -> list[ClipTruth]:
    index = folder / "truth.jsonl"
    if not index.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        cfg = SynthConfig()
        with open(index, "w", encoding="utf-8") as f:
            for i in range(count):
                action = random_composition(rng)
                frames, truth = render_clip(action, seed=int(rng.integers(2**31)), cfg=cfg)
                write_video(folder / f"{i:05d}.mp4", frames, cfg.fps)
                truth["steps"] = [[s.program, s.side] for s in action.steps]
                truth["path"] = f"{i:05d}.mp4"
                f.write(json.dumps(truth) + "\n")
    clips = []
    for line in index.read_text(encoding="utf-8").splitlines():
        truth = json.loads(line)
        action = Action(truth["action"], tuple(Step(program, side) for program, side in truth["steps"]))
        clips.append(ClipTruth(folder / truth["path"], action, truth))
    return clips


@torch.no_grad()
def frame_features(predictor: Predictor, clip: ClipTruth, classes: ClassFeatures
                   ) -> tuple[torch.Tensor, list[int], list[int]]:
    """The concept detector's features [T, F] of the frames the Predictor samples, their numbers,
    and the model's three likeliest classes among ``classes``, best first."""
    read = read_clip(clip.path, predictor.cfg.num_frames, short_side=predictor.cfg.short_side)
    video = predictor.model.encode_video(predictor.backbone.preprocess(read.frames[0])[None])
    top = predictor.model.score(video, classes, explain=False).logits[0].topk(3).indices.tolist()
    return concept_features(video.frames[0], video.patches[0], video.grid), read.indices[0].tolist(), top


def presence(clip: ClipTruth, kg: KnowledgeGraph, concepts: list[tuple[str, str]], frames: list[int]) -> np.ndarray:
    """Bool [len(frames), K]: which concepts each of the clip's ``frames`` shows."""
    return concept_presence(clip.truth, kg, concepts, frames, action=clip.action)
