"""Evaluation: multi-view scores of a dataset, metrics, and a written report.

Used by the trainer after each epoch and by ``kgclip eval --checkpoint DIR --list val.txt``.
Under ``torchrun`` every rank scores its share of the videos (no padding, no duplicates)
and the scores are gathered, so all ranks compute the same metrics.
"""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from kgclip_core.class_inputs import class_inputs
from kgclip_core.errors import ConfigError, VideoError
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.labels import LabelSet, custom_label_set
from kgclip_core.model import checkpoint as model_checkpoint
from kgclip_core.model.kgclip import ClassFeatures, KGClipModel
from kgclip_core.outputs import check_new_files
from kgclip_core.training.datasets import VideoDataset, collate, load_labels, read_list
from kgclip_core.training.distributed import DistEnv, all_gather, init_distributed, shard, shutdown
from kgclip_core.training.metrics import EvalResult, compute_metrics, confusion_figure
from kgclip_core.training.transforms import ClipTransform

log = logging.getLogger(__name__)


def clip_transform(model: KGClipModel, train: bool, test_crops: int = 1) -> ClipTransform:
    """The transform matching the model's input size and CLIP normalisation."""
    bb = model.backbone
    return ClipTransform(
        image_size=bb.image_size,
        mean=tuple(bb.mean.flatten().tolist()),
        std=tuple(bb.std.flatten().tolist()),
        train=train,
        test_crops=test_crops,
    )


def encode_label_set(model: KGClipModel, labels: LabelSet, kg: KnowledgeGraph | None = None) -> ClassFeatures:
    """Class features of a label set, with its knowledge graph (built when not given)."""
    graph = kg if kg is not None else KnowledgeGraph.for_label_set(labels)
    return model.encode_classes(class_inputs(labels, graph, model.cfg.class_text))


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision on GPU when ``dtype`` is set; plain fp32 otherwise."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


@dataclass
class Scores:
    """Per-view logits ``[N, V, C]`` and targets ``[N]`` of the videos that could be read."""

    logits: torch.Tensor
    targets: torch.Tensor
    skipped: int


@torch.no_grad()
def score_dataset(
    model: KGClipModel,
    classes: ClassFeatures,
    dataset: VideoDataset,
    env: DistEnv,
    *,
    batch_size: int = 4,
    num_workers: int = 0,
    amp_dtype: torch.dtype | None = None,
    progress: bool = False,
    desc: str = "eval",
) -> Scores:
    """Score every video of ``dataset`` (each rank its share), gathered on every rank."""
    was_training = model.training
    model.eval()
    share = Subset(dataset, shard(len(dataset), env))
    loader = DataLoader(share, batch_size=batch_size, num_workers=num_workers, collate_fn=collate,
                        pin_memory=env.device.type == "cuda")
    indices, logits, skipped = [], [], 0
    for batch in tqdm(loader, desc=desc, disable=not (progress and env.is_main), leave=False):
        skipped += batch["skipped"]
        if batch["label"].numel() == 0:
            continue
        video = batch["video"].to(env.device, non_blocking=True)  # [B, V, T, 3, S, S]
        b, v = video.shape[:2]
        with autocast(env.device, amp_dtype):
            out = model.score(model.encode_video(video.flatten(0, 1)), classes, explain=False)
        logits.append(out.logits.float().view(b, v, -1).cpu())
        indices.append(batch["index"])
    model.train(was_training)
    parts = all_gather((indices, logits, skipped), env)
    # Items carry their index in the whole dataset (Subset passes it through), so ranks' parts interleave.
    order = torch.cat([i for p in parts for i in p[0]] or [torch.empty(0, dtype=torch.long)])
    all_logits = torch.cat([x for p in parts for x in p[1]] or [torch.empty(0, 1, len(classes.names))])
    total_skipped = sum(p[2] for p in parts)
    if total_skipped:
        log.warning("Evaluation skipped %d unreadable video(s) of %d.", total_skipped, len(dataset))
    if order.numel() == 0:
        raise VideoError(f"No video of the evaluation list could be read ({len(dataset)} tried).")
    sort = order.argsort()
    targets = torch.tensor([dataset.samples[i].label for i in order[sort].tolist()])
    return Scores(all_logits[sort], targets, total_skipped)


def report_paths(directory: str | Path, name: str) -> tuple[Path, Path]:
    """The files :func:`write_report` writes: ``<name>.json`` and ``<name>_confusion.png`` in ``directory``."""
    out = Path(directory)
    return out / f"{name}.json", out / f"{name}_confusion.png"


def check_report_paths(directory: str | Path, name: str, inputs: list[str | Path]) -> None:
    """Refuse (ConfigError), before any work, an ``--out`` folder that cannot be made or written, or
    whose report files already exist: nothing is ever written over a file the command did not create."""
    folder = Path(directory).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out: cannot create folder {str(folder)!r} ({err.strerror or err}).") from None
    check_new_files("--out", report_paths(folder, name), inputs=inputs)


def write_report(result: EvalResult, class_names: list[str], directory: str | Path, name: str) -> Path:
    """``<name>.json`` (metrics and per-class report) and ``<name>_confusion.png`` in ``directory``."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    path, figure = report_paths(directory, name)
    report = {**result.summary(), "per_class": result.per_class}
    path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    confusion_figure(result, class_names).savefig(figure, dpi=120)
    return path


# Each temporal view is a full pass over a video's frames, and a batch holds clips x crops views
# of every video in it: the bounds keep one batch's frames in memory (docs/LIMITS.md).
EVAL_BOUNDS = {"clips": (1, 16), "batch_size": (1, 256), "num_workers": (0, 64)}


@dataclass
class EvalOptions:
    """What ``kgclip eval`` needs besides the checkpoint and the list."""

    video_root: str = ""
    labels: str = ""  # another label set than the checkpoint's (zero-shot evaluation)
    clips: int = 1
    crops: int = 1
    batch_size: int = 4
    num_workers: int = 4
    device: str = "auto"
    out_dir: str = ""

    def validate(self) -> None:
        """Raise ConfigError for a count outside its bounds, before the checkpoint is read."""
        for name, (lo, hi) in EVAL_BOUNDS.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ConfigError(f"--{name.replace('_', '-')} must be a whole number in [{lo}, {hi}], got {value}.")


def evaluate_checkpoint(checkpoint_dir: str | Path, list_file: str | Path, opts: EvalOptions) -> EvalResult:
    """Evaluate a Predictor checkpoint directory on a list file; writes a report if asked (never
    over an existing file, checked before the checkpoint is read)."""
    opts.validate()
    if opts.out_dir:
        check_report_paths(opts.out_dir, Path(list_file).stem, inputs=[list_file])
    env = init_distributed(opts.device)
    try:
        ckpt = model_checkpoint.load(checkpoint_dir, device=str(env.device))
        if opts.labels:
            labels, kg = load_labels(opts.labels), None
        else:
            labels = custom_label_set(ckpt.labels, name=Path(checkpoint_dir).name)
            kg = KnowledgeGraph.from_json(ckpt.kg) if ckpt.kg.get("nodes") else None
        samples = read_list(list_file, labels, opts.video_root)
        model = ckpt.model
        dataset = VideoDataset(samples, clip_transform(model, train=False, test_crops=opts.crops),
                               ckpt.config.num_frames, num_views=opts.clips, short_side=model.backbone.image_size)
        scores = score_dataset(model, encode_label_set(model, labels, kg), dataset, env,
                               batch_size=opts.batch_size, num_workers=opts.num_workers, progress=True)
        result = compute_metrics(scores.logits, scores.targets, labels.classes)
        if opts.out_dir and env.is_main:
            write_report(result, list(labels.classes), opts.out_dir, Path(list_file).stem)
        return result
    finally:
        shutdown(env)
