"""What the papers' grid trains and on which clips: the variants, the settings, the splits.

Every model starts from the foundation (``checkpoints/foundation``, the synthetic world's
pretrained CLIP) and is fine-tuned as the papers do: both towers trainable, AdamW with a
small backbone lr and 10x for the new modules, weight decay 0.2, betas 0.9/0.98, and every
variant with the same class text (the KG description). Clips are rendered once and cached
as the backbone sees them (``experiments.testbed.data``):

- training: ``TRAIN_PER_CLASS`` clips per class of ``synthetic`` (data-set seed 0);
- development (seed 1000) and test (seed 2000): 20 clips per class of ``synthetic`` and 30
  per class of ``synthetic_novel``, the splits of the foundation's report. Settings are
  chosen on development; the test split is read for the report only.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from kgclip_core.backbone import BackboneConfig, load_backbone
from kgclip_core.synth.zeroshot import render_eval_clips
from kgclip_core.training.config import OptimConfig
from experiments.testbed.data import ClipSet, ensure_dataset, load_clip_set
from experiments.testbed.train import RunSpec
from experiments.weights import digest

log = logging.getLogger(__name__)

FOUNDATION = Path("checkpoints/foundation/open_clip_model.safetensors")
BACKBONE = "kgclip-synth"
CLASS_TEXT = "description"
SPLIT_SEEDS = {"dev": 1000, "test": 2000}
EVAL_PER_CLASS = {"synthetic": 20, "synthetic_novel": 30}
TRAIN_PER_CLASS = 40
SEEDS = (0, 1, 2, 3, 4)
BATCH = 16
# Chosen on the development split (docs/TESTBED.md, "papers" section, Set-up).
LR = 1e-4
STEPS = {"supervised": 300, "few-shot": 100}

# The ablation variants (ModelConfig overrides on top of the plain CLIP) and the two learned
# controls: the full model without its KG losses (the triplet encoder's parameters, trained
# through the classification loss only) and the full model with a shuffled KG.
FULL = {"use_mra": True, "use_su": True, "use_decoder": True, "use_wti": True, "use_triplet": True}
VARIANTS: dict[str, dict] = {
    "plain CLIP": {},
    "+WTI": {"use_wti": True},
    "+MRA/SU/decoder": {"use_mra": True, "use_su": True, "use_decoder": True},
    "+KG triplet": {"use_triplet": True},
    "full KG-CLIP": FULL,
    "full, no KG losses": {**FULL, "triplet_loss_weight": 0.0},
    "full, shuffled KG": FULL,
}
SHUFFLED = "full, shuffled KG"
PAPERS_SWITCHES = {"direct_loss_weight": 1.0, "edge_targets": "soft", "su_selection": "frame"}
# Tiny heads for a 64-wide backbone (1 layer each, 4 regions as ASU, 4 units).
HEADS = dict(backbone=BACKBONE, pretrained=str(FOUNDATION), class_text=CLASS_TEXT, num_regions=4, su_top_k=4,
             decoder_layers=1, decoder_heads=2, triplet_layers=1, triplet_heads=2)


@dataclass(frozen=True)
class Setting:
    """A training protocol: all clips (``shots`` 0) or K per class, at ``frames`` frames."""

    name: str
    shots: int = 0
    frames: int = 8


SETTINGS = (Setting("supervised"), Setting("K=2", 2), Setting("K=4", 4), Setting("K=8", 8),
            Setting("T=2", frames=2), Setting("T=4", frames=4))


def fine_tune_optim(lr: float = LR) -> OptimConfig:
    """The papers' optimiser: backbone at ``lr``, new modules 10x, weight decay 0.2, betas 0.9/0.98."""
    return OptimConfig(lr=lr, new_module_lr_mult=10.0, weight_decay=0.2, betas=(0.9, 0.98), warmup_epochs=0.0,
                       clip_grad_norm=1.0)


@dataclass(frozen=True)
class GridRun:
    """One cell of the grid for one seed."""

    variant: str
    setting: Setting
    seed: int
    train_text: bool = True
    lr: float = LR
    papers: bool = False  # the fidelity switches at the papers' behaviour

    @property
    def key(self) -> str:
        return "|".join(map(str, (self.variant, self.setting.name, self.seed, self.train_text, self.lr, self.papers,
                                  self.steps)))

    @property
    def steps(self) -> int:
        return STEPS["few-shot" if self.setting.shots else "supervised"]

    def spec(self) -> RunSpec:
        """The testbed's run spec: foundation backbone, fine-tuning optimiser, variant heads."""
        model = {**HEADS, **(PAPERS_SWITCHES if self.papers else {})}
        return RunSpec(self.variant, self.seed, heads=VARIANTS[self.variant],
                       num_frames=self.setting.frames, shots=self.setting.shots, steps=self.steps, batch_size=BATCH,
                       train_text=self.train_text, optim=fine_tune_optim(self.lr), warmup_fraction=0.1,
                       model=model, shuffle_kg=self.variant == SHUFFLED)


@dataclass
class Clips:
    """The cached clips of every split."""

    train: ClipSet
    eval: dict[str, ClipSet] = field(default_factory=dict)  # "dev/synthetic", "test/synthetic_novel", ...


@functools.cache
def foundation_digest() -> str:
    """A hash of the foundation's weights: results record it, so a new foundation's runs are not
    mistaken for done."""
    return digest(FOUNDATION)


def prepare(work: Path) -> Clips:
    """Render (once) and cache (once) the training clips and the four evaluation sets."""
    cache = work / f"clips_{TRAIN_PER_CLASS}.pt"
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


def with_lr(run: GridRun, lr: float) -> GridRun:
    """The same run at another learning rate (the development sweep)."""
    return replace(run, lr=lr)
