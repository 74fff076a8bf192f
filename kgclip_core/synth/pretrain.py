"""Pretrain the stick-figure world's own CLIP: both towers, contrastively, on the caption corpus.

The method (and every real user) starts from a *pretrained* image-text model and adapts it;
no pretrained CLIP can be downloaded here, so the synthetic world gets one, trained the way
CLIP was: a symmetric contrastive loss between clip embeddings (the mean of the frames' image
embeddings) and caption embeddings. Clips of the same composition are positives of each other
(multi-positive targets), so a repeated caption or a second clip of "wave right hand" in the
batch is not pushed away as a negative.

A text tower trained from a random start can collapse (every caption to one direction), as
the testbed saw; it starts here at a lower learning rate than the image tower, and the mean
pairwise cosine of a fixed set of probe captions is logged and, after the initial plateau
(``collapse_grace``), stops the run with a clear message when it passes ``collapse_cosine``.

With ``region_weight`` > 0 a second loss asks the patch tokens for the parts (RegionCLIP's
idea, with the generator's boxes as the region annotations): in each frame, the mean of the
patch tokens a moving part's box touches is classified among all the movement phrases of the
corpus, its own phrase the target. ``init_from`` continues from existing weights, as
RegionCLIP continues from CLIP.

The result is an ordinary open_clip state dict (``open_clip_model.safetensors``), loaded the
way a user's local CLIP weights are::

    BackboneConfig("kgclip-synth", pretrained="checkpoints/foundation/open_clip_model.safetensors")
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from kgclip_core.backbone import joint_tokens
from kgclip_core.errors import ConfigError, KGClipError
from kgclip_core.synth.actions import SYNTHETIC
from kgclip_core.synth.captions import CaptionCorpus, build_corpus
from kgclip_core.synth.render import SynthConfig
from kgclip_core.training.checkpointing import atomic_save
from kgclip_core.training.trainer import warmup_cosine
from kgclip_core.video import sample_indices

log = logging.getLogger(__name__)

WEIGHTS_FILE = "open_clip_model.safetensors"
STATE_FILE = "pretrain_state.pt"
LOG_FILE = "pretrain_log.jsonl"
SUMMARY_FILE = "pretrain.json"
MAX_CORPUS = 200_000
# The corpus is held in memory as uint8 frames [clips, frames, 3, S, S] (S: the model's input
# size, 64 px): 200,000 clips of 8 frames are 19.7 GB, the most one 24 GB machine should hold.
MAX_CORPUS_GB = 20.0
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds; a negative or larger one fails deep inside them
MAX_BATCH = 1024  # clips per step: 16 times the default, and a step's activations grow with it
MAX_REGION_WEIGHT = 10.0
_TEXT_PREFIXES = ("token_embedding", "positional_embedding", "transformer.", "ln_final", "text_projection")


class PretrainError(KGClipError):
    """Pretraining cannot start, cannot resume, or stopped because the text embeddings collapsed."""


@dataclass
class PretrainConfig:
    """One pretraining run: the model, its corpus and its optimisation."""

    model: str = "kgclip-synth"
    seed: int = 0
    corpus_size: int = 6000
    num_frames: int = 8  # frames rendered per corpus clip
    # Frames per clip in a step (TSN over the rendered ones). On the development split, 64 clips x
    # 2 frames at lr 2e-3 beat 32 clips x 4 frames at lr 1e-3 (same pixels per step) by 19 points
    # zero-shot on the novel compositions (docs/TESTBED.md).
    train_frames: int = 2
    render_size: int = 112  # the synthetic clips' native size, resized to the model's input
    steps: int = 2000
    batch_size: int = 64
    lr: float = 2e-3
    text_lr_mult: float = 0.5  # the text tower starts slower: it is the one that can collapse
    weight_decay: float = 0.1
    warmup_fraction: float = 0.05
    collapse_cosine: float = 0.99
    # Both towers start near-constant and sit on a plateau (loss at chance, probe cosine up to
    # ~0.995) for the first ~150-200 steps before they separate (measured): the guard only
    # logs during this share of the steps, then stops a run whose captions stay collapsed.
    collapse_grace: float = 0.2
    check_every: int = 50
    save_every: int = 250
    # The weight of the region-text loss (``region_loss``, RegionCLIP's idea: the patch tokens
    # over a moving part, pooled, should match the movement's phrase); 0 is CLIP's loss alone, as
    # the shipped foundation was pretrained.
    region_weight: float = 0.0
    # Start from these open_clip weights (continued pretraining, as RegionCLIP starts from CLIP)
    # instead of a random initialisation.
    init_from: str | None = None

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values outside sane bounds, before any work."""
        if self.model not in open_clip.list_models():
            raise ConfigError(f"Unknown open_clip model {self.model!r}.")
        bounds = {"seed": (0, MAX_SEED), "corpus_size": (1, MAX_CORPUS), "num_frames": (1, 32), "train_frames": (1, 32),
                  "render_size": (48, 512), "steps": (1, 1_000_000), "batch_size": (2, MAX_BATCH),
                  "check_every": (1, 1_000_000), "save_every": (1, 1_000_000)}
        for name, (lo, hi) in bounds.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ConfigError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}.")
        if self.corpus_gb() > MAX_CORPUS_GB:
            raise ConfigError(f"The corpus would take {self.corpus_gb():.1f} GB of memory ({self.corpus_size} clips x "
                              f"{self.num_frames} frames of {self._image_size()} px); at most {MAX_CORPUS_GB:.0f} GB: "
                              "render fewer clips or frames.")
        if self.train_frames > self.num_frames:
            raise ConfigError(f"train_frames ({self.train_frames}) cannot exceed num_frames ({self.num_frames}).")
        if self.render_size % 2:
            raise ConfigError(f"render_size must be even, got {self.render_size}.")
        for name in ("lr", "text_lr_mult", "weight_decay", "warmup_fraction", "collapse_cosine", "collapse_grace",
                     "region_weight"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be a finite number.")
        if not (0 < self.lr <= 1 and 0 < self.text_lr_mult <= 10 and 0 <= self.weight_decay <= 1
                and 0 <= self.warmup_fraction < 1 and 0 < self.collapse_cosine <= 1 and 0 <= self.collapse_grace < 1):
            raise ConfigError("lr in (0, 1], text_lr_mult in (0, 10], weight_decay in [0, 1], "
                              "warmup_fraction in [0, 1), collapse_cosine in (0, 1], collapse_grace in [0, 1).")
        if not 0 <= self.region_weight <= MAX_REGION_WEIGHT:
            raise ConfigError(f"region_weight must be in [0, {MAX_REGION_WEIGHT}], got {self.region_weight}.")
        if self.init_from is not None and not Path(self.init_from).is_file():
            raise ConfigError(f"init_from: no weights file at {self.init_from}.")


    def _image_size(self) -> int:
        """The model's input side in pixels (the corpus's frames are stored at it)."""
        size = open_clip.get_model_config(self.model)["vision_cfg"]["image_size"]
        return int(size if isinstance(size, int) else size[0])

    def corpus_gb(self) -> float:
        """Memory of the rendered corpus's frames (uint8 [clips, frames, 3, S, S]) in GB."""
        return self.corpus_size * self.num_frames * 3 * self._image_size() ** 2 / 1e9


@dataclass
class PretrainResult:
    """What a finished run wrote and measured."""

    weights: Path
    seconds: float
    final_loss: float
    text_cosine: float


def contrastive_loss(video: torch.Tensor, text: torch.Tensor, keys: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with multi-positive targets: pairs with equal ``keys`` are positives.

    ``video`` and ``text`` [B, D] are L2-normalised; the targets of each row are uniform over
    its positives, so with distinct keys this is exactly CLIP's loss.
    """
    logits = scale * video @ text.T
    positives = (keys[:, None] == keys[None, :]).float()
    targets = positives / positives.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


def region_loss(patches: torch.Tensor, cells: torch.Tensor, phrase_ids: torch.Tensor, phrase_emb: torch.Tensor,
                scale: torch.Tensor) -> torch.Tensor:
    """Region-text cross-entropy: each region's embedding (the mean of its patch tokens, ``cells``
    [R, P] over ``patches`` [R, P, D]) classified among all the movement phrases ``phrase_emb``
    [K, D] (L2-normalised), its own phrase ``phrase_ids`` [R] the target."""
    weights = cells.to(patches.dtype)
    region = (patches * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)
    return F.cross_entropy(scale * F.normalize(region, dim=-1) @ phrase_emb.T, phrase_ids)


def mean_pairwise_cosine(emb: torch.Tensor) -> float:
    """Mean cosine between distinct rows of ``emb`` [N, D] (1.0: collapsed to one direction)."""
    e = F.normalize(emb, dim=-1)
    n = e.shape[0]
    return float(((e @ e.T).sum() - n) / (n * (n - 1)))


def _check_output_dir(out_dir: Path) -> None:
    """Fail before any work when ``out_dir`` cannot be created or written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise PretrainError(f"Cannot write to the output folder {out_dir}: {err.strerror or err}.") from None


def _param_groups(model: open_clip.CLIP, cfg: PretrainConfig) -> list[dict]:
    """open_clip's recipe: no weight decay on gains, biases and the temperature; the text
    tower at ``text_lr_mult`` times the learning rate."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        decay = p.ndim >= 2 and "logit_scale" not in name and "embedding" not in name
        groups.setdefault((name.startswith(_TEXT_PREFIXES), decay), []).append(p)
    return [{"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0,
             "lr": cfg.lr * (cfg.text_lr_mult if text else 1.0)} for (text, decay), ps in groups.items()]


def _load_state(path: Path) -> dict:
    """A resume state written by this module; anything else is a one-line PretrainError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PretrainError(f"Cannot resume: {path} does not exist.") from None
    except Exception as err:  # truncated zip, not a torch file, a pickle with code: all refused
        raise PretrainError(f"Cannot resume from {path}: not a readable pretraining state "
                            f"(truncated or foreign file: {str(err).splitlines()[0][:120]}).") from None
    if not isinstance(state, dict) or state.get("format") != "kgclip-pretrain-state":
        raise PretrainError(f"Cannot resume from {path}: it is not a pretraining state written by kgclip.")
    return state


class Pretrainer:
    """Runs one :class:`PretrainConfig` into an output folder (weights, log, resume state)."""

    def __init__(self, cfg: PretrainConfig, out_dir: str | Path) -> None:
        cfg.validate()
        self.cfg = cfg
        self.out = Path(out_dir)
        _check_output_dir(self.out)
        torch.manual_seed(cfg.seed)
        self.model = open_clip.create_model(cfg.model)
        if cfg.init_from is not None:
            try:
                self.model.load_state_dict(load_file(cfg.init_from))
            except Exception as err:  # not safetensors, or another architecture's weights
                raise PretrainError(f"Cannot start from {cfg.init_from}: not {cfg.model} weights in open_clip's "
                                    f"safetensors format ({str(err).splitlines()[0][:160]}).") from None
        self.tokenizer = open_clip.get_tokenizer(cfg.model)
        pp = self.model.visual.preprocess_cfg
        self.mean = torch.tensor(pp["mean"]).view(1, 1, 3, 1, 1)
        self.std = torch.tensor(pp["std"]).view(1, 1, 3, 1, 1)
        self.image_size = int(self.model.visual.image_size[0])
        self.grid = tuple(int(g) for g in self.model.visual.grid_size)
        self.optimizer = torch.optim.AdamW(_param_groups(self.model, cfg), betas=(0.9, 0.98), eps=1e-6)
        warmup = round(cfg.warmup_fraction * cfg.steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(warmup, cfg.steps))
        self.step = 0
        self._resumed = False
        self.probe_texts = [a.description() for a in SYNTHETIC]
        self._phrase_tokens: torch.Tensor | None = None  # the corpus's movement phrases, with the region loss on

    def resume(self, path: str | Path) -> None:
        """Continue from a state this module saved (same config, or refused)."""
        state = _load_state(Path(path))
        if state["config"] != asdict(self.cfg):
            raise PretrainError(f"Cannot resume from {path}: it was written with a different config.")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self._resumed = True

    def _batch(self, corpus: CaptionCorpus, rng: np.random.Generator
               ) -> tuple[torch.Tensor, list[str], torch.Tensor, torch.Tensor]:
        """Images [B, t, 3, S, S], one caption per clip, the clips' keys, and which (clip, frame)
        of the corpus each image is ([B * t, 2])."""
        idx = rng.choice(len(corpus), size=min(self.cfg.batch_size, len(corpus)), replace=False)
        frames = np.stack([sample_indices(self.cfg.num_frames, self.cfg.train_frames, "train", rng=rng)[0]
                           for _ in idx])
        images = corpus.frames[torch.from_numpy(idx)[:, None], torch.from_numpy(frames)]
        images = (images.float().div_(255) - self.mean) / self.std
        texts = [corpus.captions[i][int(rng.integers(len(corpus.captions[i])))] for i in idx]
        picked = torch.stack([torch.from_numpy(idx).repeat_interleave(frames.shape[1]),
                              torch.from_numpy(frames.reshape(-1))], dim=1)
        return images, texts, corpus.keys[torch.from_numpy(idx)], picked

    def _encode(self, images: torch.Tensor, texts: list[str]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Clip and caption embeddings, and (with the region loss on) the patch tokens [B * t, P, D]."""
        b, t = images.shape[:2]
        if self.cfg.region_weight > 0:
            tokens = joint_tokens(self.model.visual, images.flatten(0, 1))
            frames, patches = tokens[:, 0].reshape(b, t, -1), tokens[:, 1:]
        else:
            frames, patches = self.model.encode_image(images.flatten(0, 1)).reshape(b, t, -1), None
        video = F.normalize(F.normalize(frames, dim=-1).mean(1), dim=-1)
        text = F.normalize(self.model.encode_text(self.tokenizer(texts)), dim=-1)
        return video, text, patches

    def _region_loss(self, corpus: CaptionCorpus, patches: torch.Tensor, picked: torch.Tensor) -> torch.Tensor:
        """``region_loss`` over the region-text pairs of the batch's frames (0 when they have none)."""
        frames = corpus.frames.shape[1]
        position = {int(k): i for i, k in enumerate(picked[:, 0] * frames + picked[:, 1])}
        keys = corpus.regions[:, 0] * frames + corpus.regions[:, 1]
        rows = torch.isin(keys, picked[:, 0] * frames + picked[:, 1]).nonzero().flatten()
        if not len(rows):
            return patches.sum() * 0.0
        images = torch.tensor([position[int(k)] for k in keys[rows]])
        phrase_emb = F.normalize(self.model.encode_text(self._phrase_tokens), dim=-1)
        return region_loss(patches[images], corpus.region_cells[rows], corpus.regions[rows, 2], phrase_emb,
                           self.model.logit_scale.exp())

    @torch.no_grad()
    def text_cosine(self) -> float:
        """Mean pairwise cosine of the probe captions (the 24 training descriptions)."""
        return mean_pairwise_cosine(self.model.encode_text(self.tokenizer(self.probe_texts)))

    def _save_state(self) -> None:
        atomic_save({"format": "kgclip-pretrain-state", "config": asdict(self.cfg), "step": self.step,
                     "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "scheduler": self.scheduler.state_dict()}, self.out / STATE_FILE)

    def _save_weights(self) -> Path:
        """The open_clip state dict, written beside and moved into place in one step."""
        path = self.out / WEIGHTS_FILE
        tmp = path.with_name(path.name + ".tmp")
        try:
            save_file({k: v.detach().contiguous() for k, v in self.model.state_dict().items()}, str(tmp),
                      metadata={"model": self.cfg.model, "format": "open_clip"})
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def run(self, corpus: CaptionCorpus | None = None) -> PretrainResult:
        """Train to ``cfg.steps`` (from the resumed step), then write the weights."""
        cfg = self.cfg
        start = time.perf_counter()
        regions = cfg.region_weight > 0
        if corpus is None:
            corpus = build_corpus(cfg.corpus_size, cfg.seed, self.image_size, cfg.num_frames,
                                  SynthConfig(size=cfg.render_size),
                                  progress=lambda done, total: log.info("corpus %d/%d clips", done, total),
                                  grid=self.grid if regions else None)
        if regions and (corpus.regions is None or corpus.region_cells.shape[1] != self.grid[0] * self.grid[1]):
            raise PretrainError(f"region_weight needs a corpus built with the model's patch grid {self.grid} "
                                "(build_corpus(..., grid=...)).")
        if regions:
            self._phrase_tokens = self.tokenizer(corpus.phrases)
        render_s = time.perf_counter() - start
        self.model.train()
        loss = torch.tensor(float("nan"))
        cosine = self.text_cosine()
        with open(self.out / LOG_FILE, "a" if self._resumed else "w", encoding="utf-8") as log_file:
            while self.step < cfg.steps:
                # The batch depends only on (seed, step): a resumed run sees the same batches.
                images, texts, keys, picked = self._batch(corpus, np.random.default_rng([cfg.seed, self.step]))
                video, text, patches = self._encode(images, texts)
                loss = contrastive_loss(video, text, keys, self.model.logit_scale.exp())
                if regions:
                    region = self._region_loss(corpus, patches, picked)
                    loss = loss + cfg.region_weight * region
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
                self.scheduler.step()
                with torch.no_grad():  # CLIP's cap on the temperature
                    self.model.logit_scale.clamp_(0, math.log(100))
                self.step += 1
                if self.step % cfg.check_every == 0 or self.step == cfg.steps:
                    cosine = self.text_cosine()
                    record = {"step": self.step, "loss": round(loss.item(), 4), "text_cosine": round(cosine, 4),
                              "logit_scale": round(self.model.logit_scale.exp().item(), 2),
                              "lr": self.scheduler.get_last_lr()[0], "seconds": round(time.perf_counter() - start, 1)}
                    if regions:
                        record["region_loss"] = round(region.item(), 4)
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                    log.info("step %d/%d loss %.3f text cosine %.3f", self.step, cfg.steps, loss.item(), cosine)
                    if cosine > cfg.collapse_cosine and self.step > cfg.collapse_grace * cfg.steps:
                        raise PretrainError(
                            f"Stopped at step {self.step}: the text embeddings collapsed (mean pairwise cosine "
                            f"{cosine:.3f} > {cfg.collapse_cosine}). Lower lr or text_lr_mult and start again.")
                if self.step % cfg.save_every == 0 and self.step < cfg.steps:
                    self._save_state()
        weights = self._save_weights()
        seconds = time.perf_counter() - start
        summary = {"config": asdict(cfg), "final_loss": round(loss.item(), 4), "text_cosine": round(cosine, 4),
                   "seconds": round(seconds, 1), "render_seconds": round(render_s, 1),
                   "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}",
                   "torch_threads": torch.get_num_threads()}
        (self.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (self.out / STATE_FILE).unlink(missing_ok=True)
        return PretrainResult(weights, seconds, loss.item(), cosine)

