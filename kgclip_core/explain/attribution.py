"""Integrated Gradients on the frames (captum): which pixels pushed the predicted class up.

Opt-in: it runs the model ``steps`` times with gradients, where the prediction itself ran it
once. The clip is not decoded again: the attribution starts from the frames the Prediction
holds and the label set's cached class embeddings. Progress is reported through a callback
``progress(fraction, message)`` as the interpolation steps are evaluated; between passes the work
stops once ``cancel`` is set (Cancelled) or a server's request budget (``Predictor.limits``) is
spent (BudgetError). The same engine maps a text's match with the frames among the heatmap
methods (``heatmaps.integrated_gradients``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from kgclip_core.budget import CancelToken
from kgclip_core.errors import ConfigError
from kgclip_core.explain.maps import to_frame
from kgclip_core.explain.text import escape_markdown
from kgclip_core.heatmaps.integrated_gradients import integrated_gradients_of
from kgclip_core.labels import LabelSet
from kgclip_core.prediction import Prediction
from kgclip_core.predictor import Predictor

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


@dataclass
class Attribution:
    """Integrated-Gradients maps of one class on the sampled frames."""

    label: str
    class_index: int
    maps: np.ndarray = field(repr=False)  # [T, H, W] on the frames, >= 0, maximum over the clip is 1
    delta: float  # completeness error: sum of attributions minus the logit difference to the baseline
    steps: int


def attribution_note(attr: Attribution) -> str:
    """One Markdown line on how to read the maps of ``attr`` and its completeness error (label escaped)."""
    return (f"Integrated Gradients for **{escape_markdown(attr.label)}** over {attr.steps} steps: bright = the pixels "
            f"that raised the score most. Completeness error {attr.delta:.3g}: the attributions should add up to how "
            "much the score rises from a blank (mean-colour) clip to this one; the error is what they miss, and near "
            "0 means enough steps were taken (raise the steps if it is large against the score).")


def integrated_gradients(
    predictor: Predictor,
    pred: Prediction,
    labels: str | Sequence[str] | LabelSet | None,
    rank: int = 0,
    steps: int = 16,
    batch: int = 4,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> Attribution:
    """Attribute the logit of the prediction's ``rank``-th class to the pixels of its frames.

    ``labels`` must be what was passed to ``predict`` (the class embeddings come from the
    Predictor's cache). The baseline is the mean image (zeros after CLIP normalisation);
    ``batch`` interpolation steps run per pass. Maps are the absolute attribution summed over
    colour channels, placed on the frames like the model's maps and scaled to a maximum of 1.
    """
    if not 0 <= rank < len(pred.class_indices):
        raise ConfigError(f"rank must be in 0..{len(pred.class_indices) - 1}, got {rank}.")
    if steps < 2 or batch < 1:
        raise ConfigError("Integrated Gradients needs steps >= 2 and batch >= 1.")
    label_set, _, deadline = predictor.start_request(labels, 1, cancel)
    target = pred.class_indices[rank]
    if label_set.classes[target] != pred.class_names[rank]:
        raise ConfigError("The labels given are not the ones this prediction was made with.")
    _, classes = predictor.classes(label_set)
    images = predictor.backbone.preprocess(pred.frames)[None]
    done = 0
    report = progress or (lambda fraction, message: None)

    def forward(x: torch.Tensor) -> torch.Tensor:
        nonlocal done
        if deadline is not None:
            deadline.check("computing Integrated Gradients")
        logits = predictor.model(x, classes).logits
        done += x.shape[0]
        report(min(done / steps, 1.0), f"Integrated Gradients: {min(done, steps)}/{steps} steps")
        return logits

    report(0.0, "Integrated Gradients: starting")
    with torch.enable_grad():
        attr, delta = integrated_gradients_of(forward).attribute(
            images, baselines=torch.zeros_like(images), target=target, n_steps=steps,
            internal_batch_size=batch, return_convergence_delta=True)
    grid = attr[0].abs().sum(dim=1).detach().float().cpu().numpy()  # [T, S, S]
    maps = to_frame(grid, pred.frames.shape[1:3])
    peak = float(maps.max())
    maps = maps / peak if peak > 0 else maps
    log.info("Integrated Gradients for %r: %d steps, convergence delta %.4g", pred.labels[rank], steps, float(delta))
    return Attribution(label=pred.labels[rank], class_index=target, maps=maps, delta=float(delta), steps=steps)
