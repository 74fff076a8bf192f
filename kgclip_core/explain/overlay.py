"""Heatmaps drawn on frames with matplotlib colormaps.

The colormap is ``COLORMAP`` ("inferno": perceptually uniform and readable in grey; black
where the map is 0, pale yellow at its maximum). Each map is scaled by its own maximum
before colouring, so the colours show where a map is strong within its frame, not how
strong it is against other frames.

:func:`heatmap_gallery` gives each frame as one picture a person can read on its own: the raw
frame, the frame with the map over it, and a colour bar that says what the colours mean,
with a caption: which frame, then on a line of its own what the map shows. The app shows these
pictures as they come.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from kgclip_core.prediction import Prediction

COLORMAP = "inferno"
SCALE_TOP, SCALE_BOTTOM = "peak", "0"  # the colour bar's ends: each map is scaled by its frame's maximum
GENERIC_CAPTION = "left: the frame; right: the map over it (colour bar: bright = the strongest place in the frame)"
_GAP, _BAR = 6, 12  # pixels between the panels; width of the colour bar


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


def _frame_names(pred: Prediction) -> list[str]:
    return [f"frame {idx} @ {t:.2f}s" for idx, t in zip(pred.frame_indices, pred.timestamps)]


def colorbar(height: int, cmap: str = COLORMAP) -> np.ndarray:
    """A vertical colour bar [height, width, 3] uint8 with its ends labelled: the colormap from 0
    (bottom) to each frame's peak (top), on white."""
    font = ImageFont.load_default(size=max(9, height // 18))
    label_w = int(max(font.getlength(SCALE_TOP), font.getlength(SCALE_BOTTOM))) + 4
    bar = matplotlib.colormaps[cmap](np.linspace(1.0, 0.0, height))[:, :3] * 255.0  # top = 1
    out = Image.new("RGB", (_BAR + 3 + label_w, height), "white")
    out.paste(Image.fromarray(np.repeat(bar[:, None], _BAR, axis=1).round().astype(np.uint8)), (0, 0))
    draw = ImageDraw.Draw(out)
    draw.text((_BAR + 3, 0), SCALE_TOP, fill="black", font=font)
    draw.text((_BAR + 3, height), SCALE_BOTTOM, fill="black", font=font, anchor="ld")
    return np.asarray(out)


def heatmap_panel(frame: np.ndarray, heat: np.ndarray, alpha: float = 0.5, cmap: str = COLORMAP) -> np.ndarray:
    """One frame [H, W, 3] and its map [H, W] side by side as one picture: the raw frame, the
    overlay, and a colour bar of the map's scale."""
    shown = overlay(frame, heat, alpha, cmap)
    bar = colorbar(frame.shape[0], cmap)
    gap = np.full((frame.shape[0], _GAP, 3), 255, dtype=np.uint8)
    return np.concatenate([frame, gap, shown, gap, bar], axis=1)


def heatmap_gallery(pred: Prediction, maps: np.ndarray | None = None, alpha: float = 0.5,
                    cmap: str = COLORMAP, caption: str | None = None) -> list[tuple[np.ndarray, str]]:
    """The sampled frames as pictures with captions: with maps [T, H, W], each frame beside its
    overlay and a colour bar (:func:`heatmap_panel`); without, the plain frames.

    ``caption``: one line on what the maps show (``explain.maps.heatmap_caption``), put on a line
    after each frame's name (a thumbnail has room for the name alone, an enlarged picture for
    both); by default a line on how to read the picture.
    """
    names = _frame_names(pred)
    if maps is None:
        return [(f, f"{name}\n{caption}" if caption else name) for f, name in zip(pred.frames, names)]
    line = caption or GENERIC_CAPTION
    return [(heatmap_panel(f, m, alpha, cmap), f"{name}\n{line}") for f, m, name in zip(pred.frames, maps, names)]


def heatmap_figure(pred: Prediction, maps: np.ndarray, title: str = "", alpha: float = 0.5,
                   cmap: str = COLORMAP, columns: int = 4) -> Figure:
    """A grid of the overlaid frames with a shared colour bar (0 to each map's maximum), for reports."""
    rows = -(-len(pred.frames) // columns)
    fig = Figure(figsize=(3 * columns, 2.4 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, frame, heat, caption in zip(axes.flat, pred.frames, maps, _frame_names(pred)):
        ax.imshow(overlay(frame, heat, alpha, cmap))
        ax.set_title(caption, fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    mappable = matplotlib.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(0, 1))
    fig.colorbar(mappable, ax=axes, shrink=0.6, label="share of the frame's maximum")
    if title:
        fig.suptitle(title)
    return fig
