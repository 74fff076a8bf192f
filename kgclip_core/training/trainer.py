"""The trainer: one process per device under ``torchrun``, or a plain single process.

It follows the papers' recipe: AdamW with the backbone at ``lr`` and the new modules at
``lr * new_module_lr_mult``, linear warmup then cosine decay per optimizer step, mixed
precision on GPU (bf16 where supported, fp16 with a gradient scaler otherwise, fp32 on CPU),
gradient accumulation, and optional gradient checkpointing or a frozen backbone.

Everything the run writes goes under ``run.output_dir``: ``config.yaml``, ``splits/``,
``log.jsonl`` (one JSON record per logged step and evaluation), ``tensorboard/``,
``checkpoints/{last,best}.pt`` and ``best_model/`` (a Predictor checkpoint directory).

Exact resume: data order depends only on (seed, epoch) and each sample's frames and
augmentation on (seed, epoch, index), so a run restarted from a checkpoint written after
step k sees the same batches, with the same model, optimizer, scheduler, scaler and random
states, as a run that never stopped.
"""

from __future__ import annotations

import json
import logging
import math
import random
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from kgclip_core.class_inputs import class_inputs
from kgclip_core.errors import ConfigError, VideoError
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.model.kgclip import ClassFeatures, ClassInputs, KGClipModel, build_model
from kgclip_core.model.losses import compute_losses
from kgclip_core.training import distributed as du
from kgclip_core.training.checkpointing import (
    CheckpointManager, export_predictor, recover_export, rng_state, set_rng_state,
)
from kgclip_core.training.config import OptimConfig, TrainConfig
from kgclip_core.training.datasets import ResumableSampler, VideoDataset, collate
from kgclip_core.training.evaluate import autocast, clip_transform, encode_label_set, score_dataset, write_report
from kgclip_core.training.metrics import compute_metrics, harmonic_mean
from kgclip_core.training.protocols import Splits, build_splits

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch: every rank builds the same initial model."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``optim.amp`` on ``device``; None (fp32) on CPU."""
    if device.type != "cuda" or mode == "none":
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def param_groups(model: nn.Module, optim: OptimConfig) -> list[dict[str, Any]]:
    """AdamW groups: backbone vs new modules (10x lr), with and without weight decay.

    Biases, norms and the temperature are not decayed (as in CLIP and open_clip training).
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        new = not name.startswith("backbone.")
        decay = p.ndim >= 2 and "logit_scale" not in name
        groups.setdefault((new, decay), []).append(p)
    return [
        {
            "params": params,
            "lr": optim.lr * (optim.new_module_lr_mult if new else 1.0),
            "weight_decay": optim.weight_decay if decay else 0.0,
            "name": f"{'new' if new else 'backbone'}{'' if decay else '_no_decay'}",
        }
        for (new, decay), params in sorted(groups.items())
    ]


def warmup_cosine(warmup_steps: int, total_steps: int):
    """LR factor per optimizer step: linear warmup to 1, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def configure_trainable(model: KGClipModel, optim: OptimConfig) -> None:
    """Freeze what is not trained and switch on gradient checkpointing when asked.

    The text tower is frozen unless ``model.cfg.train_text``: frozen, class texts are
    embedded once per label set, without gradient (and cached on disk), so its weights would
    never receive one.
    """
    clip = model.backbone.model
    if not model.cfg.train_text:
        for name, p in clip.named_parameters():
            if not name.startswith("visual.") and name != "logit_scale":
                p.requires_grad_(False)
    if optim.freeze_backbone:
        model.backbone.requires_grad_(False)
    if optim.grad_checkpointing:
        clip.visual.set_grad_checkpointing(True)


class _LossModule(nn.Module):
    """Model forward plus losses in one call, so DDP sees one forward per step.

    Given :class:`ClassInputs` (a trained text tower) it embeds the classes inside the call,
    so the text tower's gradients are part of the same forward.
    """

    def __init__(self, model: KGClipModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, images: torch.Tensor, labels: torch.Tensor, classes: ClassFeatures | ClassInputs
    ) -> dict[str, torch.Tensor]:
        if isinstance(classes, ClassInputs):
            classes = self.model.encode_classes(classes)
        out = self.model(images, classes)
        return compute_losses(self.model, out, classes, labels)


class RunLogger:
    """JSON-lines and TensorBoard logs of the main rank (appended to on resume)."""

    def __init__(self, directory: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.path = directory / "log.jsonl"
        self.tb = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            directory.mkdir(parents=True, exist_ok=True)
            self.tb = SummaryWriter(str(directory / "tensorboard"))

    def log(self, kind: str, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "step": step, **values}) + "\n")
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


@dataclass
class TrainResult:
    """What a finished run reports."""

    output_dir: Path
    steps: int
    best_metric: float | None
    last_metrics: dict[str, float]


class Trainer:
    """Builds data, model and optimiser from a :class:`TrainConfig` and runs :meth:`fit`."""

    def __init__(self, cfg: TrainConfig) -> None:
        if cfg.model.pretrained is None and not cfg.run.allow_random_weights:
            raise ConfigError(
                "model.pretrained is null, so training would start from random CLIP weights. Give a "
                "pretrained tag or file, or set run.allow_random_weights=true for a smoke test."
            )
        self.cfg = cfg
        self.env = du.init_distributed(cfg.run.device)
        self.out = Path(cfg.run.output_dir)
        seed_everything(cfg.run.seed)
        self.splits: Splits = build_splits(cfg, self.out / "splits" if self.env.is_main else None)
        if self.env.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(cfg.to_yaml(), encoding="utf-8")
        self.model = build_model(cfg.model, device=str(self.env.device))
        configure_trainable(self.model, cfg.optim)
        self.kg = KnowledgeGraph.for_label_set(self.splits.labels)
        self.train_inputs = class_inputs(self.splits.labels, self.kg, cfg.model.class_text)
        self.train_classes, self.eval_classes = self._encode_classes()
        self._build_data()
        self._build_optimizer()
        self.ckpt = CheckpointManager(self.out / "checkpoints", cfg.learning_fields())
        self.logger = RunLogger(self.out, self.env.is_main)
        self.step = 0
        self.epoch = 0
        self.batches_done = 0  # micro-batches of the current epoch already trained
        self.best: float | None = None
        self.lr = cfg.optim.lr

    # ------------------------------------------------------------------ set-up
    @torch.no_grad()
    def _encode_classes(self) -> tuple[ClassFeatures, list[ClassFeatures]]:
        """Class features of the training and evaluation label sets, without gradients. With a
        frozen text tower they never change and are computed once; with ``model.train_text``
        training embeds the classes every step and evaluation calls this again."""
        # The main rank fills the on-disk text cache first; the others then read it.
        if not self.env.is_main:
            du.barrier(self.env)
        train = self.model.encode_classes(self.train_inputs)
        evals = [
            train if ev.labels == self.splits.labels else encode_label_set(self.model, ev.labels)
            for ev in self.splits.evals
        ]
        if self.env.is_main:
            du.barrier(self.env)
        return train, evals

    def _build_data(self) -> None:
        cfg, env = self.cfg, self.env
        train_tf = clip_transform(self.model, train=True)
        if not cfg.data.flip:
            train_tf = replace(train_tf, flip_p=0.0)
        self.train_set = VideoDataset(
            self.splits.train, train_tf, cfg.model.num_frames,
            short_side=cfg.data.short_side, seed=cfg.run.seed,
        )
        self.sampler = ResumableSampler(self.train_set, env.world_size, env.rank, cfg.run.seed)
        per_rank = len(self.sampler)
        accum = cfg.optim.grad_accum
        self.micro_per_epoch = per_rank // cfg.optim.batch_size // accum * accum
        if self.micro_per_epoch == 0:
            raise ConfigError(
                f"The training split has {per_rank} videos per process, fewer than optim.batch_size x "
                f"optim.grad_accum = {cfg.optim.batch_size * accum}; lower them or add data."
            )
        self.steps_per_epoch = self.micro_per_epoch // accum
        test_tf = clip_transform(self.model, train=False, test_crops=cfg.data.test_crops)
        self.eval_sets = [
            VideoDataset(ev.samples, test_tf, cfg.model.num_frames, num_views=cfg.data.test_clips,
                         short_side=self.model.backbone.image_size)
            for ev in self.splits.evals
        ]

    def _build_optimizer(self) -> None:
        o = self.cfg.optim
        self.amp = amp_dtype(o.amp, self.env.device)
        groups = param_groups(self.model, o)
        self.params = [p for g in groups for p in g["params"]]
        if not self.params:
            raise ConfigError(
                "Nothing to train: optim.freeze_backbone is on and the model has no new modules; "
                "turn on a head (model.use_mra, use_decoder, use_wti, use_triplet) or unfreeze the backbone."
            )
        self.optimizer = torch.optim.AdamW(groups, lr=o.lr, betas=o.betas, eps=o.eps)
        total = o.epochs * self.steps_per_epoch
        warmup = round(o.warmup_epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(warmup, total))
        self.scaler = torch.amp.GradScaler(self.env.device.type, enabled=self.amp == torch.float16)
        loss_module = _LossModule(self.model)
        if self.env.distributed:
            ids = [self.env.device.index] if self.env.device.type == "cuda" else None
            # Ablation configs can leave a head without a gradient in some steps (e.g. MRA
            # regions that neither SU selection nor the decoder reads); DDP must not wait for them.
            loss_module = DistributedDataParallel(loss_module, device_ids=ids, find_unused_parameters=True)
        self.loss_module = loss_module

    def _loader(self, epoch: int, start_batch: int) -> DataLoader:
        self.train_set.set_epoch(epoch)
        self.sampler.set_epoch(epoch, start=start_batch * self.cfg.optim.batch_size)
        return DataLoader(
            self.train_set, batch_size=self.cfg.optim.batch_size, sampler=self.sampler,
            num_workers=self.cfg.data.num_workers, collate_fn=collate, drop_last=True,
            pin_memory=self.env.device.type == "cuda", worker_init_fn=_worker_init,
        )

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": du.all_gather(rng_state(), self.env),
            "epoch": self.epoch,
            "step": self.step,
            "batches_done": self.batches_done,
            "best": self.best,
            "world_size": self.env.world_size,
        }

    def save(self, is_best: bool = False) -> None:
        state = self._state()  # every rank takes part in gathering the random states
        if self.env.is_main:
            self.ckpt.save(state, is_best)
            if is_best:
                export_predictor(self.model, self.out / "best_model", self.kg.to_json(), list(self.splits.labels.classes))
        du.barrier(self.env)

    def resume(self) -> bool:
        """Load ``last.pt`` when there is one; True when the run continues from it."""
        if self.env.is_main:
            recover_export(self.out / "best_model")
        state = self.ckpt.load()
        if state is None:
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.batches_done = state["epoch"], state["step"], state["batches_done"]
        self.best = state["best"]
        if state["world_size"] == self.env.world_size:
            set_rng_state(state["rng"][self.env.rank])
        else:
            log.warning("Resuming on %d processes a run saved on %d: random states are not restored.",
                        self.env.world_size, state["world_size"])
        log.info("Resumed from %s at epoch %d, step %d.", self.ckpt.last, self.epoch, self.step)
        return True

    # ------------------------------------------------------------------ training
    def _micro_step(self, batch: dict, sync: bool) -> dict[str, float] | None:
        """Forward and backward of one micro-batch; None when a rank had nothing readable."""
        n = batch["label"].numel()
        # Every rank must take the same path, or DDP's collectives would wait forever.
        if du.all_reduce_sum([float(n == 0)], self.env)[0] > 0:
            return None
        images = batch["video"][:, 0].to(self.env.device, non_blocking=True)  # one view when training
        labels = batch["label"].to(self.env.device, non_blocking=True)
        ddp = isinstance(self.loss_module, DistributedDataParallel)
        context = self.loss_module.no_sync() if ddp and not sync else nullcontext()
        classes = self.train_inputs if self.cfg.model.train_text else self.train_classes
        with context:
            with autocast(self.env.device, self.amp):
                losses = self.loss_module(images, labels, classes)
            self.scaler.scale(losses["total"] / self.cfg.optim.grad_accum).backward()
        return {k: v.item() for k, v in losses.items()}

    def _optimizer_step(self, synced: bool, update: bool) -> None:
        """One optimizer step; ``update`` False (no micro-batch of the window was readable on
        some rank) keeps the weights but still advances the schedule, so steps stay aligned."""
        if update:
            if not synced:
                du.average_gradients(self.params, self.env)
            o = self.cfg.optim
            if o.clip_grad_norm > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.params, o.clip_grad_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
        group = self.optimizer.param_groups[0]
        self.lr = self.cfg.optim.lr * group["lr"] / group["initial_lr"]  # the backbone lr of this step
        self.scheduler.step()
        self.step += 1

    def _train_epoch(self) -> None:
        cfg, accum = self.cfg, self.cfg.optim.grad_accum
        loader = self._loader(self.epoch, self.batches_done)
        todo = self.micro_per_epoch - self.batches_done
        bar = tqdm(total=todo, desc=f"epoch {self.epoch + 1}/{cfg.optim.epochs}",
                   disable=not (self.env.is_main and cfg.run.progress), leave=False)
        window: list[dict[str, float]] = []
        synced, read, skipped = False, 0, 0
        for batch in loader:
            if self.batches_done >= self.micro_per_epoch:
                break
            last_of_window = (self.batches_done + 1) % accum == 0
            skipped += batch["skipped"]
            read += batch["label"].numel()
            losses = self._micro_step(batch, sync=last_of_window)
            if losses is not None:
                window.append(losses)
                synced = last_of_window
            self.batches_done += 1
            bar.update(1)
            if last_of_window:
                self._optimizer_step(synced, update=bool(window))
                self._log_step(window)
                window, synced = [], False
                every = cfg.run.save_every_steps
                if every and self.step % every == 0 and self.batches_done < self.micro_per_epoch:
                    self.save()
        bar.close()
        read, skipped = du.all_reduce_sum([read, skipped], self.env)
        if skipped:
            log.warning("Epoch %d: skipped %d unreadable video(s); see the warnings above.", self.epoch + 1, int(skipped))
            self.logger.log("data", self.step, {"epoch": self.epoch + 1, "skipped_videos": int(skipped)})
        if todo > 0 and read == 0:
            raise VideoError("No training video could be read in a whole epoch; check data.video_root and the list.")

    def _log_step(self, window: list[dict[str, float]]) -> None:
        keys = sorted({k for w in window for k in w})
        sums = [sum(w.get(k, 0.0) for w in window) for k in keys] + [float(len(window))]
        totals = du.all_reduce_sum(sums, self.env)
        count = totals[-1]
        if count == 0 or (self.step % self.cfg.run.log_every and self.step != 1):
            return
        values = {f"loss_{k}" if k != "total" else "loss": v / count for k, v in zip(keys, totals)}
        values["lr"] = self.lr
        values["epoch"] = self.epoch + self.batches_done / self.micro_per_epoch
        self.logger.log("train", self.step, values)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, float]:
        """Metrics of every evaluation set; reports are written under ``eval/epoch_<n>``."""
        if self.cfg.model.train_text:  # the text tower has moved since the classes were embedded
            self.train_classes, self.eval_classes = self._encode_classes()
        results: dict[str, float] = {}
        for ev, dataset, classes in zip(self.splits.evals, self.eval_sets, self.eval_classes):
            scores = score_dataset(
                self.model, classes, dataset, self.env, batch_size=self.cfg.optim.batch_size,
                num_workers=self.cfg.data.num_workers, amp_dtype=self.amp,
                progress=self.cfg.run.progress, desc=f"eval {ev.name}",
            )
            result = compute_metrics(scores.logits, scores.targets, ev.labels.classes)
            results.update({f"{ev.name}_{k}": v for k, v in result.summary().items()})
            if self.env.is_main:
                write_report(result, list(ev.labels.classes), self.out / "eval" / f"epoch_{self.epoch + 1}", ev.name)
        if {"base_top1", "novel_top1"} <= set(results):
            results["harmonic_mean_top1"] = harmonic_mean(results["base_top1"], results["novel_top1"])
        self.logger.log("eval", self.step, {"epoch": self.epoch + 1, **results})
        return results

    def fit(self) -> TrainResult:
        """Train to ``optim.epochs`` (resuming when a checkpoint exists and ``run.resume``)."""
        if self.cfg.run.resume:
            self.resume()
        metrics: dict[str, float] = {}
        self.loss_module.train()
        try:
            while self.epoch < self.cfg.optim.epochs:
                self._train_epoch()
                last = self.epoch + 1 == self.cfg.optim.epochs
                every = self.cfg.run.eval_every
                is_best = False
                if self.eval_sets and (last or (every and (self.epoch + 1) % every == 0)):
                    metrics = self.evaluate()
                    # The first evaluation set selects the best model (base classes for base-to-novel).
                    key = f"{self.splits.evals[0].name}_top1"
                    is_best = self.best is None or metrics[key] > self.best
                    self.best = max(metrics[key], self.best or 0.0)
                elif not self.eval_sets:
                    is_best = last  # nothing to select on: the final model is exported
                self.epoch += 1
                self.batches_done = 0
                self.save(is_best)
        finally:
            self.logger.close()
        return TrainResult(self.out, self.step, self.best, metrics)


def _worker_init(_: int) -> None:
    # Decoding and resizing run in many workers at once; one thread each avoids oversubscription.
    torch.set_num_threads(1)


def train(cfg: TrainConfig) -> TrainResult:
    """Run training as ``cfg`` says (use under ``torchrun`` for several processes)."""
    trainer = Trainer(cfg)
    try:
        return trainer.fit()
    finally:
        du.shutdown(trainer.env)
