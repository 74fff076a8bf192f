"""Train one (variant, protocol, seed) run on cached clips, and evaluate it.

A run is a plain CLIP with the variant's heads switched on (``RunSpec.heads``) and any other
``ModelConfig`` field overridden (``RunSpec.model``: the papers' grid fine-tunes the foundation
with its own heads and optimiser, :mod:`experiments.papers.setup`). ``RunSpec``'s own defaults
train from scratch, as the retired from-scratch testbed did (docs/TESTBED.md). Optimisation
reuses the trainer's pieces (parameter groups, warmup + cosine, the model's own losses); only
the data path differs (cached frames, see ``data.py``). No horizontal flip: it would turn
"raise right arm" into "raise left arm".

By default the text tower is trained with the rest (``RunSpec.train_text``): the class texts
are embedded again, with gradients, every step. (From scratch, a frozen random text tower
gives nearly identical class embeddings.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from kgclip_core.class_inputs import class_inputs, shuffled_knowledge
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.labels import LabelSet, load_label_set
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import ClassFeatures, ClassInputs, KGClipModel, VideoFeatures, build_model
from kgclip_core.model.losses import compute_losses
from kgclip_core.synth.actions import get_action
from kgclip_core.synth.pretrain import region_loss
from kgclip_core.synth.regions import movement_cells
from kgclip_core.training.config import OptimConfig
from kgclip_core.training.protocols import few_shot
from kgclip_core.training.trainer import configure_trainable, param_groups, seed_everything, warmup_cosine
from experiments.papers.data import ClipSet, View

log = logging.getLogger(__name__)


@dataclass
class RunSpec:
    """One training run: which model, which data, how long."""

    variant: str
    seed: int
    num_frames: int = 8
    shots: int = 0  # 0: every training clip (supervised); K: K clips per class
    steps: int = 300
    batch_size: int = 16
    train_text: bool = True  # False: the text tower stays as initialised (the class texts embedded once)
    # From scratch: one learning rate for backbone and heads, far above fine-tuning's 1e-5.
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        lr=2e-3, new_module_lr_mult=1.0, weight_decay=0.05, warmup_epochs=0.0, clip_grad_norm=1.0))
    warmup_fraction: float = 0.1
    heads: dict = field(default_factory=dict)  # the variant's head switches (ModelConfig fields); none: plain CLIP
    model: dict = field(default_factory=dict)  # other ModelConfig fields: the backbone, the class text, ...
    shuffle_kg: bool = False  # the shuffled-KG control: each class gets another's units and edges
    # The foundation's region-text loss kept in fine-tuning (``region_term``): the patch tokens
    # over a moving part should still match its movement unit. 0: class labels alone.
    region_weight: float = 0.0

    @property
    def protocol(self) -> str:
        return f"few-shot K={self.shots}" if self.shots else "supervised"


def model_config(spec: RunSpec) -> ModelConfig:
    """The ModelConfig of a run: the plain CLIP at the run's frames and text-tower protocol, with
    the variant's head switches and the other overrides."""
    return ModelConfig.plain_clip(**{"num_frames": spec.num_frames, "train_text": spec.train_text, **spec.heads,
                                     **spec.model})


def spec_inputs(labels: LabelSet, kg: KnowledgeGraph, class_text: str, shuffle_seed: int | None) -> ClassInputs:
    """A label set's class inputs, with the knowledge shuffled between classes when a seed is
    given (the description too when it is the class text: it is the KG's)."""
    inputs = class_inputs(labels, kg, class_text)
    if shuffle_seed is None:
        return inputs
    return shuffled_knowledge(inputs, shuffle_seed, prompts_from_kg=class_text == "description")


@torch.no_grad()
def label_classes(model: KGClipModel, label_set: str | Sequence[str], class_text: str | None = None,
                  shuffle_seed: int | None = None) -> tuple[KnowledgeGraph, ClassFeatures]:
    """A label set's (a built-in name or class names) knowledge graph and class features under
    ``model``, without gradients (for evaluation); ``class_text`` defaults to the model's, and
    ``shuffle_seed`` shuffles the knowledge as the shuffled-KG control trained with it."""
    labels = load_label_set(label_set)
    kg = KnowledgeGraph.for_label_set(labels)
    return kg, model.encode_classes(spec_inputs(labels, kg, class_text or model.cfg.class_text, shuffle_seed))


def train_model(spec: RunSpec, train: ClipSet, label_set: str | Sequence[str] = "synthetic",
                on_step: Callable[[int, KGClipModel], None] | None = None,
                ) -> tuple[KGClipModel, KnowledgeGraph]:
    """Train a fresh model as ``spec`` says on clips labelled in ``label_set`` (a built-in name
    or the class names in label order); returns it in eval mode with the label set's KG.
    ``on_step(steps done, model)`` is called after every step (the development sweep reads its
    accuracy there, and leaves the model in training mode)."""
    seed_everything(spec.seed)
    model = build_model(model_config(spec), device="cpu")
    configure_trainable(model, spec.optim)
    labels = load_label_set(label_set)
    kg = KnowledgeGraph.for_label_set(labels)
    inputs = spec_inputs(labels, kg, model.cfg.class_text, spec.seed if spec.shuffle_kg else None)
    classes = None if spec.train_text else model.encode_classes(inputs)  # frozen: once
    if spec.shots:
        paths = {p: i for i, p in enumerate(train.paths)}
        chosen = few_shot(train.samples(), spec.shots, spec.seed, len(train.classes))
        train = train.subset([paths[s.path] for s in chosen])
    optimizer = torch.optim.AdamW(param_groups(model, spec.optim), lr=spec.optim.lr, betas=spec.optim.betas)
    warmup = round(spec.warmup_fraction * spec.steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, spec.steps))
    rng = np.random.default_rng([spec.seed, spec.shots, spec.num_frames])
    order = np.empty(0, dtype=np.int64)
    batch = min(spec.batch_size, len(train))
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    start = time.perf_counter()
    for step in range(spec.steps):
        if len(order) < batch:  # a new epoch: reshuffle, as DistributedSampler does
            order = np.concatenate([order, rng.permutation(len(train))])
        idx, order = order[:batch], order[batch:]
        views: list[View] | None = [] if spec.region_weight > 0 else None
        images = train.clips(idx, spec.num_frames, rng, views)
        if spec.train_text:  # the text tower changes every step: embed the classes again
            classes = model.encode_classes(inputs)
        video = model.encode_video(images)
        out = model.score(video, classes, explain=False)
        losses = compute_losses(model, out, classes, train.labels[idx])
        if views is not None:
            losses["region"] = region_term(video, classes, train, idx, views, out.logit_scale)
            losses["total"] = losses["total"] + spec.region_weight * losses["region"]
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, spec.optim.clip_grad_norm)
        optimizer.step()
        scheduler.step()
        if on_step is not None:
            on_step(step + 1, model)
    log.info("%s %s T=%d seed %d: %d steps in %.0f s, last loss %.3f", spec.variant, spec.protocol,
             spec.num_frames, spec.seed, spec.steps, time.perf_counter() - start, losses["total"].item())
    return model.eval(), kg


def region_term(video: VideoFeatures, classes: ClassFeatures, train: ClipSet, idx: np.ndarray, views: list[View],
                scale: torch.Tensor) -> torch.Tensor:
    """The region-text loss of the foundation's pretraining (``synth.pretrain.region_loss``) on
    a fine-tuning batch: in each sampled frame, the mean patch token over each moving part's
    box (placed through the clip's random crop) classified among the label set's movement
    units, its own movement the target. 0 when no frame of the batch shows one."""
    movements = [u for u, kind in enumerate(classes.unit_types) if kind == "movement"]
    target = {classes.unit_texts[u]: k for k, u in enumerate(movements)}
    size = train.frames.shape[-1]
    images, cells, phrases = [], [], []
    for b, (i, view) in enumerate(zip(idx.tolist(), views)):
        truth, action = train.truth[i], get_action(train.classes[int(train.labels[i])])
        px = size / truth["size"][0]  # the render is square: resizing scales the boxes
        for t, f in enumerate(view.frames.tolist()):
            for phrase, touched in movement_cells(action, truth["frames"][f], (size, size), px, video.grid,
                                                  view.crop):
                if phrase in target:
                    images.append(b * len(view.frames) + t)
                    cells.append(torch.from_numpy(touched.reshape(-1)))
                    phrases.append(target[phrase])
    patches = video.patches.flatten(0, 1)
    if not images:
        return patches.sum() * 0.0
    return region_loss(patches[images], torch.stack(cells), torch.tensor(phrases), classes.unit_emb[movements],
                       scale)


def unit_logits(model: KGClipModel, video_emb: torch.Tensor, classes: ClassFeatures) -> torch.Tensor:
    """Classification by KG description: a class scores the mean of its units' video-movement
    triplet scores [B, C] (only for models with the triplet encoder)."""
    fwd, inv = model.triplet.pair_scores(video_emb, "video-movement", classes.unit_emb)
    units = 0.5 * (fwd + inv)  # [B, U]
    mask = classes.class_unit_mask.float()  # [C, U]
    return units @ mask.T / mask.sum(1).clamp_min(1.0)


@torch.no_grad()
def clip_scores(model: KGClipModel, clips: ClipSet, classes: ClassFeatures,
                batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits [N, C] and video embeddings [N, D] of every clip (evaluation frames)."""
    t = model.cfg.num_frames
    logits, videos = [], []
    for start in range(0, len(clips), batch_size):
        idx = list(range(start, min(start + batch_size, len(clips))))
        out = model.score(model.encode_video(clips.clips(idx, t, None)), classes, explain=False)
        logits.append(out.logits)
        videos.append(out.video_emb)
    return torch.cat(logits), torch.cat(videos)


@torch.no_grad()
def accuracy(model: KGClipModel, clips: ClipSet, classes: ClassFeatures, batch_size: int = 32) -> dict[str, float]:
    """Top-1 accuracy (%) of the model's logits and, with a triplet encoder, of its KG-unit scores."""
    logits, videos = clip_scores(model, clips, classes, batch_size)
    result = {"top1": 100.0 * (logits.argmax(1) == clips.labels).float().mean().item()}
    if model.triplet is not None:
        hits = unit_logits(model, videos, classes).argmax(1) == clips.labels
        result["kg_units_top1"] = 100.0 * hits.float().mean().item()
    return result
