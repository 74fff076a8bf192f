"""Measures of the explanations experiment: ROC area, calibration error, and bootstrap intervals
over clips (the unit of sampling: a clip's concepts are not independent of each other)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

BOOTSTRAP_DRAWS = 2000
CALIBRATION_BINS = 10


def auroc(scores: Sequence[float] | torch.Tensor, labels: Sequence[bool] | torch.Tensor) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (ties count half); NaN without both classes."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return float("nan")
    ranks = np.empty(len(s))
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks[order] = np.arange(1, len(s) + 1)
    combined = np.concatenate([pos, neg])
    for value in np.unique(combined):  # ties: the mean rank
        tied = combined == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def calibration_error(probabilities: Sequence[float] | torch.Tensor, labels: Sequence[bool] | torch.Tensor,
                      bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: the mean gap between stated probability and observed frequency
    over ``bins`` equal-width bins, weighted by how many predictions fall in each."""
    p, y = np.asarray(probabilities, float), np.asarray(labels, float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(p[which == b].mean() - y[which == b].mean()) * (which == b).sum()
                     for b in range(bins) if (which == b).any()) / len(p))


def clip_bootstrap(groups: Sequence[object], measure: Callable[[list[object]], float], seed: int = 0,
                   draws: int = BOOTSTRAP_DRAWS) -> tuple[float, float, float]:
    """``measure`` of ``groups`` (one entry per clip) with the 95% interval of a bootstrap that
    resamples clips."""
    rng = np.random.default_rng(seed)
    values = [measure([groups[i] for i in rng.integers(0, len(groups), len(groups))]) for _ in range(draws)]
    lo, hi = np.nanpercentile(values, [2.5, 97.5])
    return measure(list(groups)), float(lo), float(hi)
