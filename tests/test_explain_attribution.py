"""Integrated Gradients on the frames of a prediction (tiny CLIP, training-free and full heads)."""

import numpy as np
import pytest

from kgclip_core import explain
from kgclip_core.errors import ConfigError
from kgclip_core.explain.maps import crop_box

LABELS = ["biking", "playing guitar", "archery", "surfing"]
STEPS = 4


@pytest.fixture(scope="module")
def predictor(make_full_predictor):
    return make_full_predictor(num_frames=4)


@pytest.fixture(scope="module")
def pred(predictor, real_clip):
    return predictor.predict(real_clip, labels=LABELS, top_k=3)


@pytest.fixture(scope="module")
def attribution(predictor, pred):
    calls = []
    attr = explain.integrated_gradients(predictor, pred, LABELS, steps=STEPS, batch=2,
                                        progress=lambda f, m: calls.append((f, m)))
    return attr, calls


def test_maps_are_on_the_frames_in_zero_one(pred, attribution):
    attr, _ = attribution
    assert attr.maps.shape == pred.frames.shape[:3]
    assert attr.maps.min() >= 0 and attr.maps.max() == pytest.approx(1.0)
    top, left, side = crop_box(*pred.frames.shape[1:3])
    assert attr.maps[:, :, :left].max() == 0 and attr.maps[:, :, left + side:].max() == 0
    assert (attr.maps[:, top:top + side, left:left + side] > 0).mean() > 0.5  # dense, not a few pixels
    assert attr.label == pred.labels[0] and attr.class_index == pred.class_indices[0] and attr.steps == STEPS


def test_completeness_holds(attribution):
    # IG's attributions add up to the logit difference between the clip and the baseline.
    attr, _ = attribution
    assert np.isfinite(attr.delta) and abs(attr.delta) < 0.05


def test_progress_is_reported_up_to_done(attribution):
    _, calls = attribution
    fractions = [f for f, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert len(calls) >= STEPS // 2 + 1 and "Integrated Gradients" in calls[-1][1]


def test_another_class_gets_other_maps(predictor, pred, attribution):
    second = explain.integrated_gradients(predictor, pred, LABELS, rank=1, steps=STEPS)
    assert second.label == pred.labels[1]
    assert np.abs(second.maps - attribution[0].maps).max() > 0.05


def test_wrong_labels_or_settings_are_refused(predictor, pred):
    with pytest.raises(ConfigError):
        explain.integrated_gradients(predictor, pred, list(reversed(LABELS)), steps=STEPS)
    with pytest.raises(ConfigError):
        explain.integrated_gradients(predictor, pred, LABELS, rank=7)
    with pytest.raises(ConfigError):
        explain.integrated_gradients(predictor, pred, LABELS, steps=1)


def test_a_cancel_stops_the_passes_at_the_next_one(predictor, pred):
    """A new upload in the app cancels the deep explanation: the passes stop at the next batch."""
    from kgclip_core.budget import CancelToken
    from kgclip_core.errors import Cancelled

    token, passes = CancelToken(), []

    def progress(fraction: float, message: str) -> None:
        if fraction > 0:
            passes.append(fraction)
            token.cancel()  # cancelled while the first pass is reported

    with pytest.raises(Cancelled, match="Integrated Gradients"):
        explain.integrated_gradients(predictor, pred, LABELS, steps=8, batch=2, progress=progress, cancel=token)
    assert passes == [0.25]  # one pass of four, then nothing


def test_the_servers_budget_ends_it(predictor, pred):
    from kgclip_core.budget import RequestLimits
    from kgclip_core.errors import BudgetError

    predictor.limits, old = RequestLimits(budget_s=0.0), predictor.limits
    try:
        with pytest.raises(BudgetError, match="budget while computing Integrated Gradients"):
            explain.integrated_gradients(predictor, pred, LABELS, steps=4)
    finally:
        predictor.limits = old
