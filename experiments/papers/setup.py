"""How the papers' grid trains and on which clips: the settings, the runs, the splits.

Every model starts from the foundation (``checkpoints/foundation``, the synthetic world's
pretrained CLIP) and is fine-tuned as the papers do: both towers trainable, AdamW with a
small backbone lr and 10x for the new modules, weight decay 0.2, betas 0.9/0.98; each run's
class text (the name in the prompt templates, or the KG description) is part of its arm.
Clips are rendered once and cached as the backbone sees them (:mod:`experiments.papers.data`):

- training: ``TRAIN_PER_CLASS`` clips per class of ``synthetic`` (data-set seed 0);
- development (seed 1000) and test (seed 2000): 20 clips per class of ``synthetic`` and 60
  per class of ``synthetic_novel``. Settings are chosen on development; the test split is
  read for the report only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from kgclip_core.backbone import BackboneConfig, load_backbone
from kgclip_core.synth.zeroshot import render_eval_clips
from kgclip_core.training.config import OptimConfig
from experiments.papers.common import (BACKBONE, BATCH, FOUNDATION, LR, SHUFFLED, SPLIT_SEEDS, STEPS,
                                       TRAIN_PER_CLASS, VARIANTS)
from experiments.papers.data import ClipSet, ensure_dataset, load_clip_set
from experiments.papers.train import RunSpec

EVAL_PER_CLASS = {"synthetic": 20, "synthetic_novel": 60}  # novel: >= 60 a class (issue 30)
PAPERS_SWITCHES = {"direct_loss_weight": 1.0, "edge_targets": "soft", "su_selection": "frame"}
# Tiny heads for a 64-wide backbone (1 layer each, 4 regions as ASU, 4 units).
HEADS = dict(backbone=BACKBONE, pretrained=str(FOUNDATION), num_regions=4, su_top_k=4,
             decoder_layers=1, decoder_heads=2, triplet_layers=1, triplet_heads=2)


@dataclass(frozen=True)
class Setting:
    """A training protocol: all clips (``shots`` 0) or K per class, at ``frames`` frames."""

    name: str
    shots: int = 0
    frames: int = 8


SETTINGS = (Setting("supervised"), Setting("K=2", 2), Setting("K=4", 4), Setting("K=8", 8),
            Setting("T=2", frames=2), Setting("T=4", frames=4))


def fine_tune_optim(lr: float) -> OptimConfig:
    """The papers' optimiser: backbone at ``lr``, new modules 10x, weight decay 0.2, betas 0.9/0.98."""
    return OptimConfig(lr=lr, new_module_lr_mult=10.0, weight_decay=0.2, betas=(0.9, 0.98), warmup_epochs=0.0,
                       clip_grad_norm=1.0)


@dataclass(frozen=True)
class GridRun:
    """One cell of the grid for one seed."""

    variant: str
    setting: Setting
    seed: int
    class_text: str = "name"  # the class embedding's text: "name" (the papers' baseline) or "description"
    train_text: bool = True
    lr: float | None = None  # the backbone learning rate, when not the setting's (LR)
    papers: bool = False  # the fidelity switches at the papers' behaviour
    max_steps: int | None = None  # the step count, when not the setting's (the development sweep's long runs)

    @property
    def key(self) -> str:
        return "|".join(map(str, (self.variant, self.class_text, self.setting.name, self.seed, self.train_text,
                                  self.learning_rate, self.papers, self.steps)))

    @property
    def kind(self) -> str:
        return "few-shot" if self.setting.shots else "supervised"

    @property
    def learning_rate(self) -> float:
        return self.lr or LR[self.kind]

    @property
    def steps(self) -> int:
        return self.max_steps or STEPS[self.kind]

    def spec(self) -> RunSpec:
        """The run's training spec: foundation backbone, fine-tuning optimiser, variant heads."""
        model = {**HEADS, "class_text": self.class_text, **(PAPERS_SWITCHES if self.papers else {})}
        return RunSpec(self.variant, self.seed, heads=VARIANTS[self.variant],
                       num_frames=self.setting.frames, shots=self.setting.shots, steps=self.steps, batch_size=BATCH,
                       train_text=self.train_text, optim=fine_tune_optim(self.learning_rate), warmup_fraction=0.1,
                       model=model, shuffle_kg=self.variant == SHUFFLED)


@dataclass
class Clips:
    """The cached clips of every split."""

    train: ClipSet
    eval: dict[str, ClipSet] = field(default_factory=dict)  # "dev/synthetic", "test/synthetic_novel", ...


def prepare(work: Path) -> Clips:
    """Render (once) and cache (once) the training clips and the four evaluation sets."""
    # A pickle: it names the modules of Clips and ClipSet, so a cache written while ClipSet lived in
    # the retired experiments.testbed cannot be read; the name changed with the module.
    cache = work / f"clips_{TRAIN_PER_CLASS}.papers.pt"
    if cache.is_file():
        return torch.load(cache, weights_only=False)
    backbone = load_backbone(BackboneConfig(BACKBONE, str(FOUNDATION), device="cpu", use_text_cache=False))
    train_dir = ensure_dataset(work / "train", "synthetic", TRAIN_PER_CLASS, 0, 0.0)
    clips = Clips(train=load_clip_set(train_dir, backbone, "train"))
    for split, seed in SPLIT_SEEDS.items():
        for label_set, per_class in EVAL_PER_CLASS.items():
            out = work / f"{split}_{label_set}"
            render_eval_clips(out, label_set, per_class, seed)
            clips.eval[f"{split}/{label_set}"] = load_clip_set(out, backbone)
    torch.save(clips, cache)
    return clips
