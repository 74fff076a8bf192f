"""Heatmaps drawn on frames with matplotlib colormaps.

The colormap is ``COLORMAP`` ("inferno": perceptually uniform and readable in grey; black
where the map is 0, pale yellow at its maximum). Each map is scaled by its own maximum
before colouring, so the colours show where a map is strong within its frame, not how
strong it is against other frames.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from kgclip_core.predictor import Prediction

COLORMAP = "inferno"


def overlay(frame: np.ndarray, heat: np.ndarray, alpha: float = 0.5, cmap: str = COLORMAP) -> np.ndarray:
    """Blend a heatmap [H, W] over an RGB frame [H, W, 3] uint8: ``(1 - alpha) * frame + alpha * colour``."""
    if frame.shape[:2] != heat.shape:
        raise ValueError(f"heatmap {heat.shape} does not match frame {frame.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    peak = float(heat.max())
    scaled = heat / peak if peak > 0 else np.zeros_like(heat)
    colour = matplotlib.colormaps[cmap](scaled)[..., :3] * 255.0
    out = (1.0 - alpha) * frame.astype(np.float32) + alpha * colour
    return out.round().clip(0, 255).astype(np.uint8)


def _captions(pred: Prediction) -> list[str]:
    return [f"frame {idx} @ {t:.2f}s" for idx, t in zip(pred.frame_indices, pred.timestamps)]


def heatmap_gallery(pred: Prediction, maps: np.ndarray | None = None, alpha: float = 0.5,
                    cmap: str = COLORMAP) -> list[tuple[np.ndarray, str]]:
    """The sampled frames, each with its map [T, H, W] overlaid (plain frames when None), captioned."""
    frames = list(pred.frames) if maps is None else [overlay(f, m, alpha, cmap) for f, m in zip(pred.frames, maps)]
    return list(zip(frames, _captions(pred)))


def heatmap_figure(pred: Prediction, maps: np.ndarray, title: str = "", alpha: float = 0.5,
                   cmap: str = COLORMAP, columns: int = 4) -> Figure:
    """A grid of the overlaid frames with a shared colour bar (0 to each map's maximum), for reports."""
    rows = -(-len(pred.frames) // columns)
    fig = Figure(figsize=(3 * columns, 2.4 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, (image, caption) in zip(axes.flat, heatmap_gallery(pred, maps, alpha, cmap)):
        ax.imshow(image)
        ax.set_title(caption, fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    mappable = matplotlib.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(0, 1))
    fig.colorbar(mappable, ax=axes, shrink=0.6, label="share of the frame's maximum")
    if title:
        fig.suptitle(title)
    return fig
