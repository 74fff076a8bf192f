"""Statistics of the grid: mean and spread over seeds, and paired bootstrap confidence intervals.

A variant and plain CLIP trained with the same seed share the few-shot clips and are tested
on the same clips, so their difference is paired: the bootstrap resamples seeds and test
clips (the same draws for both arms) and takes the 2.5th and 97.5th percentiles of the mean
difference.
"""

from __future__ import annotations

import statistics

import numpy as np

BOOTSTRAP_DRAWS = 2000


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def paired_bootstrap(a: dict[int, list[int]], b: dict[int, list[int]], seed: int = 0,
                     draws: int = BOOTSTRAP_DRAWS) -> tuple[float, float, float] | None:
    """Mean accuracy difference a - b in points, with its 95% interval, over the seeds both have.

    ``a[seed]`` and ``b[seed]`` are per-clip correctness (1/0) on the same clips, in order.
    None when no seed is shared.
    """
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    diff = np.array([np.asarray(a[s], float) - np.asarray(b[s], float) for s in seeds])  # [S, N]
    rng = np.random.default_rng(seed)
    s, n = diff.shape
    rows = rng.integers(0, s, size=(draws, s))
    cols = rng.integers(0, n, size=(draws, n))
    means = np.array([diff[r][:, c].mean() for r, c in zip(rows, cols)])
    lo, hi = np.percentile(means, [2.5, 97.5])
    return 100.0 * diff.mean(), 100.0 * lo, 100.0 * hi
