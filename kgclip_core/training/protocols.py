"""The evaluation protocols of the papers, as train / evaluation splits.

- ``supervised``: the whole train list; evaluate on the validation list.
- ``few_shot``: K videos per class drawn from the train list (K in {2, 4, 8, 16} in the
  papers), deterministically from a seed; evaluate on the full validation list.
- ``zero_shot``: train on one label set, evaluate on another (e.g. Kinetics-400 -> UCF-101):
  the classes of the target are only ever seen as text.
- ``base_to_novel``: the first half of the classes (in label-set order) is "base", the rest
  "novel"; train on K shots of the base classes, evaluate on base and novel separately
  (and report their harmonic mean).

Drawn splits are written to the run's output folder, so every run documents its data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kgclip_core.errors import ConfigError
from kgclip_core.labels import LabelSet, custom_label_set
from kgclip_core.training.config import TrainConfig
from kgclip_core.training.datasets import Sample, load_labels, read_list, write_list

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    """Samples to evaluate and the label set their indices refer to."""

    name: str
    samples: list[Sample]
    labels: LabelSet


@dataclass
class Splits:
    """What a protocol trains and evaluates on."""

    train: list[Sample]
    labels: LabelSet
    evals: list[EvalSet]


def few_shot(samples: Sequence[Sample], shots: int, seed: int, num_classes: int) -> list[Sample]:
    """``shots`` samples per class, drawn without replacement, in list order.

    Each class has its own generator keyed by (seed, class), so a split depends only on
    the seed and the list, never on the order classes are visited in.
    """
    if shots < 1:
        raise ConfigError(f"Few-shot training needs shots >= 1, got {shots}.")
    by_class: dict[int, list[int]] = {c: [] for c in range(num_classes)}
    for i, s in enumerate(samples):
        by_class[s.label].append(i)
    chosen: list[int] = []
    for c, members in by_class.items():
        if len(members) < shots:
            log.warning("Class %d has %d training videos, fewer than %d shots; using all of them.", c, len(members), shots)
        rng = np.random.default_rng([seed, c])
        take = rng.choice(len(members), size=min(shots, len(members)), replace=False)
        chosen += [members[j] for j in take]
    if not chosen:
        raise ConfigError("The few-shot split is empty: the train list has no samples.")
    return [samples[i] for i in sorted(chosen)]


def base_novel_classes(num_classes: int) -> tuple[list[int], list[int]]:
    """The first ceil(N/2) classes are base, the rest novel."""
    if num_classes < 2:
        raise ConfigError("Base-to-novel needs a label set of at least 2 classes.")
    half = (num_classes + 1) // 2
    return list(range(half)), list(range(half, num_classes))


def restrict(samples: Sequence[Sample], labels: LabelSet, classes: Sequence[int], name: str) -> tuple[list[Sample], LabelSet]:
    """Samples of the given classes, relabelled 0..len(classes)-1, and their label set."""
    new = {c: i for i, c in enumerate(classes)}
    kept = [Sample(s.path, new[s.label]) for s in samples if s.label in new]
    if not kept:
        raise ConfigError(f"The {name} split is empty: no sample has one of its {len(classes)} classes.")
    return kept, custom_label_set([labels.classes[c] for c in classes], name=f"{labels.name}-{name}")


def _save(splits: Splits, directory: Path, cfg: TrainConfig) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_list(splits.train, directory / "train.txt", cfg.data.video_root)
    summary = {"protocol": cfg.protocol.name, "shots": cfg.protocol.shots, "seed": cfg.protocol.seed,
               "train": {"samples": len(splits.train), "classes": list(splits.labels.classes)}, "eval": {}}
    for ev in splits.evals:
        write_list(ev.samples, directory / f"eval_{ev.name}.txt")
        summary["eval"][ev.name] = {"samples": len(ev.samples), "classes": list(ev.labels.classes)}
    (directory / "splits.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


def build_splits(cfg: TrainConfig, save_dir: str | Path | None = None) -> Splits:
    """The train and evaluation splits of ``cfg.protocol``; written to ``save_dir`` if given."""
    d, p = cfg.data, cfg.protocol
    if not d.train_list:
        raise ConfigError("data.train_list is not set; give the training list file.")
    labels = load_labels(d.labels) if d.labels else None
    if labels is None:
        raise ConfigError("data.labels is not set; give a built-in label set, an id,name CSV or a .txt file.")
    train = read_list(d.train_list, labels, d.video_root)
    val = read_list(d.val_list, labels, d.val_video_root or d.video_root) if d.val_list else None
    evals: list[EvalSet] = []
    if p.name == "base_to_novel":
        base, novel = base_novel_classes(len(labels))
        train, train_labels = restrict(train, labels, base, "base")
        train = few_shot(train, p.shots, p.seed, len(train_labels))
        if val is not None:
            for name, classes in (("base", base), ("novel", novel)):
                samples, set_labels = restrict(val, labels, classes, name)
                evals.append(EvalSet(name, samples, set_labels))
        labels = train_labels
    else:
        if p.name == "few_shot":
            train = few_shot(train, p.shots, p.seed, len(labels))
        if val is not None:
            evals.append(EvalSet("val", val, labels))
        if p.name == "zero_shot":
            target_labels = load_labels(p.target_labels)
            target = read_list(p.target_list, target_labels, p.target_video_root)
            evals.append(EvalSet("target", target, target_labels))
    splits = Splits(train, labels, evals)
    if save_dir is not None:
        _save(splits, Path(save_dir), cfg)
    return splits
