"""Metrics on hand-made logits: top-k, mean class accuracy, confusion, multi-view averaging."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from kgclip_core.training.metrics import (
    average_views,
    compute_metrics,
    confusion_figure,
    harmonic_mean,
    topk_accuracy,
)

NAMES = ["a", "b", "c", "d", "e", "f"]


def one_hot_scores(ranked: list[list[int]], num_classes: int = 6) -> torch.Tensor:
    """Scores whose descending order per row is the given class list."""
    scores = torch.zeros(len(ranked), num_classes)
    for row, order in enumerate(ranked):
        for rank, c in enumerate(order):
            scores[row, c] = 10.0 - rank
    return scores


def test_topk_and_mean_class_accuracy():
    # class 0: 2 of 3 right; class 1: 0 of 1 right (true class ranked 2nd); class 2: 1 of 1.
    scores = one_hot_scores([[0, 1], [0, 2], [1, 0], [0, 1], [2, 0]])
    targets = torch.tensor([0, 0, 0, 1, 2])
    r = compute_metrics(scores, targets, NAMES)
    assert r.top1 == pytest.approx(3 / 5)
    assert r.top5 == pytest.approx(1.0)
    assert r.mean_class_accuracy == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert topk_accuracy(scores, targets, 2) == pytest.approx(1.0)
    expected = np.zeros((6, 6), dtype=np.int64)
    for t, p in [(0, 0), (0, 0), (0, 1), (1, 0), (2, 2)]:
        expected[t, p] += 1
    np.testing.assert_array_equal(r.confusion, expected)


def test_top5_misses_a_target_ranked_sixth():
    scores = one_hot_scores([[1, 2, 3, 4, 5, 0]])
    r = compute_metrics(scores, torch.tensor([0]), NAMES)
    assert r.top1 == 0.0 and r.top5 == 0.0


def test_per_class_report():
    scores = one_hot_scores([[0], [0], [1]])
    r = compute_metrics(scores, torch.tensor([0, 1, 1]), NAMES)
    rows = {row["class"]: row for row in r.per_class}
    assert rows["a"] == {"class": "a", "support": 1, "recall": 1.0, "precision": 0.5}
    assert rows["b"]["recall"] == pytest.approx(0.5) and rows["b"]["precision"] == 1.0
    assert rows["c"]["recall"] is None and rows["c"]["support"] == 0


def test_multi_view_average_uses_probabilities():
    # View 1 is confidently wrong (class 1), views 2 and 3 mildly right (class 0):
    # logit averaging would pick class 1, probability averaging picks class 0.
    logits = torch.tensor([[[0.0, 9.0, 0.0], [2.0, 0.0, 0.0], [2.0, 0.0, 0.0]]])
    probs = average_views(logits)
    assert probs.shape == (1, 3) and probs.sum().item() == pytest.approx(1.0)
    assert logits.mean(1).argmax().item() == 1
    r = compute_metrics(logits, torch.tensor([0]), ["x", "y", "z"])
    assert r.top1 == 1.0


def test_confusion_figure_and_harmonic_mean():
    r = compute_metrics(one_hot_scores([[0], [1]]), torch.tensor([0, 2]), NAMES)
    fig = confusion_figure(r, NAMES, max_classes=3)
    assert isinstance(fig, Figure)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]
    assert harmonic_mean(0.8, 0.4) == pytest.approx(2 * 0.32 / 1.2)
    assert harmonic_mean(0.0, 0.0) == 0.0
