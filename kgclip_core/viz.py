"""Figures for people: the top-k bar chart and the captioned frame strip.

Rendering lives in the library (not in ``app.py``) so it is tested without Gradio and the
CLI or a notebook can draw the same pictures.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from kgclip_core.predictor import Prediction


def topk_bar_chart(pred: Prediction) -> go.Figure:
    """Horizontal bar chart of the top-k classes, best on top, scores as percentages."""
    labels = list(reversed(pred.labels))
    scores = [100.0 * s for s in reversed(pred.scores)]
    fig = go.Figure(go.Bar(x=scores, y=labels, orientation="h", text=[f"{s:.1f}%" for s in scores],
                           textposition="auto", marker_color="#3b6fb6"))
    title = f"Top-{len(labels)} of {pred.label_set}" + (" (RANDOM WEIGHTS)" if pred.random_weights else "")
    fig.update_layout(title=title, xaxis_title="probability (%)", xaxis_range=[0, 100],
                      height=120 + 40 * len(labels), margin=dict(l=10, r=10, t=40, b=40))
    return fig


def frame_gallery(pred: Prediction) -> list[tuple[np.ndarray, str]]:
    """The sampled frames with a caption each: frame index and time in seconds."""
    return [(frame, f"frame {idx} @ {t:.2f}s")
            for frame, idx, t in zip(pred.frames, pred.frame_indices, pred.timestamps)]
