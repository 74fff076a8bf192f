"""Classification metrics: top-k, mean class accuracy, per-class report, confusion matrix.

Scores of several test views (temporal clips x spatial crops) of a video are averaged as
softmax probabilities before ranking, the usual multi-view protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch


def average_views(logits: torch.Tensor) -> torch.Tensor:
    """Logits ``[N, V, C]`` of V views per video -> mean softmax probabilities ``[N, C]``."""
    if logits.dim() != 3:
        raise ValueError(f"expected logits [N, V, C], got shape {tuple(logits.shape)}")
    return logits.float().softmax(dim=-1).mean(dim=1)


def topk_accuracy(scores: torch.Tensor, targets: torch.Tensor, k: int) -> float:
    """Share of rows whose target is among the ``k`` highest scores (k capped at C)."""
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices
    return (top == targets[:, None]).any(dim=1).float().mean().item()


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> np.ndarray:
    """Counts ``[C, C]``: row = true class, column = predicted class."""
    flat = targets.long() * num_classes + preds.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes).numpy()


@dataclass
class EvalResult:
    """Metrics of one evaluation; accuracies are fractions in [0, 1]."""

    top1: float
    top5: float
    mean_class_accuracy: float
    num_samples: int
    confusion: np.ndarray
    per_class: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """The scalar metrics, for logs."""
        return {"top1": self.top1, "top5": self.top5, "mean_class_accuracy": self.mean_class_accuracy,
                "num_samples": self.num_samples}


def compute_metrics(scores: torch.Tensor, targets: torch.Tensor, class_names: Sequence[str]) -> EvalResult:
    """Metrics of scores ``[N, C]`` (or per-view logits ``[N, V, C]``) against targets ``[N]``.

    Mean class accuracy averages recall over the classes present in ``targets``; classes
    without samples get ``recall: None`` in the report.
    """
    if scores.dim() == 3:
        scores = average_views(scores)
    if scores.shape[0] == 0:
        raise ValueError("no samples to evaluate")
    n_cls = scores.shape[1]
    preds = scores.argmax(dim=1)
    cm = confusion_matrix(preds, targets, n_cls)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    per_class = []
    for c, name in enumerate(class_names):
        hit = int(cm[c, c])
        per_class.append({
            "class": name,
            "support": int(support[c]),
            "recall": hit / support[c] if support[c] else None,
            "precision": hit / predicted[c] if predicted[c] else None,
        })
    recalls = [row["recall"] for row in per_class if row["recall"] is not None]
    return EvalResult(
        top1=topk_accuracy(scores, targets, 1),
        top5=topk_accuracy(scores, targets, 5),
        mean_class_accuracy=float(np.mean(recalls)),
        num_samples=int(scores.shape[0]),
        confusion=cm,
        per_class=per_class,
    )


def harmonic_mean(a: float, b: float) -> float:
    """Base-to-novel's summary of base and novel accuracy."""
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def confusion_figure(result: EvalResult, class_names: Sequence[str], max_classes: int = 60):
    """A matplotlib figure of the row-normalised confusion matrix.

    With many classes (Kinetics-400) only the ``max_classes`` most-confused true classes are
    drawn, so the labels stay readable.
    """
    # A bare Figure needs no pyplot backend, so this is safe in DataLoader-free servers too.
    from matplotlib.figure import Figure

    cm = result.confusion.astype(float)
    keep = np.arange(len(class_names))
    if len(keep) > max_classes:
        errors = cm.sum(axis=1) - np.diag(cm)
        keep = np.sort(np.argsort(-errors, kind="stable")[:max_classes])
    sub = cm[np.ix_(keep, keep)]
    norm = sub / np.maximum(sub.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.25 * len(keep) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = [class_names[i] for i in keep]
    ax.set_xticks(range(len(keep)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(keep)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"top-1 {100 * result.top1:.1f}%  mean class {100 * result.mean_class_accuracy:.1f}%")
    fig.tight_layout()
    return fig
