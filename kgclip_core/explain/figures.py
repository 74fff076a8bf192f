"""Plotly charts and the semantic-unit table of a prediction.

Every function reads the Prediction only (no model calls), so the app, a notebook or a
report draws the same pictures from one prediction. Plotly reads a few HTML tags in chart text, so text
that can come from a user (typed labels) is escaped first.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from kgclip_core.explain.text import escape_html
from kgclip_core.prediction import Prediction

# Column names say what their numbers are: the app shows the table as it comes.
UNIT_COLUMNS = ["unit", "type", "score (cosine)", "ranked by (score less usual)", "weight (share)", "in top class",
                "best frame"]
EVIDENCE_COLUMNS = ["shown", "concept", "type", "score", "best frame"]
# The word-frame alignment: its plot area (and colour bar) is at least this tall, and the title
# and the frame names with the axis title below take this much beside it.
ALIGNMENT_MIN_PX, ALIGNMENT_MARGIN_PX = 180, 190
# How to read the selected units' table (plain text: the app and the HTML report show it).
UNITS_NOTE = ("Score: how well the unit's text matches the frames (cosine, averaged over the frames). Ranked by: "
              "for a model fine-tuned with the hubness correction, the score less the unit's usual level over "
              "clips, so that units that match almost any clip (a raised arm) do not crowd out what this clip shows "
              "more than others do; otherwise (the shipped models) the score itself. Weight: the unit's share of "
              "the model's attention over the selected units (they add up to 1). In top class: the unit is one of "
              "the top action's own concepts. Best frame: the time of the frame it matches best.")


def _frame_labels(pred: Prediction) -> list[str]:
    return [f"{t:.1f}s" for t in pred.timestamps]


def topk_bar_chart(pred: Prediction) -> go.Figure:
    """Horizontal bar chart of the top-k classes, best on top, scores as percentages."""
    labels = [escape_html(label) for label in reversed(pred.labels)]
    scores = [100.0 * s for s in reversed(pred.scores)]
    fig = go.Figure(go.Bar(x=scores, y=labels, orientation="h", text=[f"{s:.1f}%" for s in scores],
                           textposition="auto", marker_color="#3b6fb6"))
    title = f"Top-{len(labels)} of {escape_html(pred.label_set)}" + (" (RANDOM WEIGHTS)" if pred.random_weights else "")
    fig.update_layout(title=title, xaxis_title="probability (%)", xaxis_range=[0, 100],
                      height=120 + 40 * len(labels), margin=dict(l=10, r=10, t=40, b=40))
    return fig


def units_table(pred: Prediction) -> pd.DataFrame:
    """The selected semantic units, best first: text, type, score (mean cosine over frames),
    what the selection ranked it by (:attr:`SelectedUnit.rank_score`), semantic-attention
    weight, whether the top class has the unit, and its best frame's time."""
    rows = []
    for u in pred.units:
        best = max(range(len(u.frame_scores)), key=u.frame_scores.__getitem__)
        rows.append([u.text, u.type.replace("_", " "), round(u.score, 4), round(u.rank_score, 4), round(u.weight, 4),
                     "yes" if u.in_top_class else "", _frame_labels(pred)[best]])
    return pd.DataFrame(rows, columns=UNIT_COLUMNS)


def evidence_table(pred: Prediction) -> pd.DataFrame:
    """The top class's own concepts, best first: whether the clip shows them (✓), the concept,
    its type, its score (see :func:`evidence_rule`) and the time of its best frame."""
    labels = _frame_labels(pred)
    rows = [["✓" if e.present else "✗", e.text, e.type.replace("_", " "), round(e.score, 4), labels[e.best_frame]]
            for e in pred.evidence]
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)


def evidence_rule(pred: Prediction) -> str:
    """Plain text (no user text): what an evidence score is and when a concept counts as shown."""
    if pred.evidence_measure == "detector":
        return (f"the probability that the clip shows the concept is at least {pred.evidence_threshold:.0%} "
                "(the model's concept detector, calibrated on held-out clips: of the concepts given 80%, "
                "about four in five really happen)")
    return (f"its score (cosine of the concept's text with the frames, averaged) is at least "
            f"{pred.evidence_threshold:.3f}, i.e. the clip matches it better than three quarters of all the "
            "concepts of this label set do")


def evidence_note(pred: Prediction) -> str:
    """One line on how to read the evidence table (Markdown, no user text)."""
    if not pred.evidence:
        return "*The top action has no knowledge-graph concepts to check.*"
    shown = sum(e.present for e in pred.evidence)
    return (f"**{shown} of {len(pred.evidence)}** concepts of the top action are shown by the clip. "
            f"✓ = {evidence_rule(pred)}.")


def unit_timeline(pred: Prediction) -> go.Figure | None:
    """Heatmap of each selected unit's score (cosine) in each sampled frame; None without units."""
    if not pred.units:
        return None
    names = [f"{escape_html(u.text)} ({u.type.replace('_', ' ')}){' *' if u.in_top_class else ''}" for u in pred.units]
    fig = go.Figure(go.Heatmap(z=[u.frame_scores for u in pred.units], x=_frame_labels(pred), y=names,
                               colorscale="Viridis", colorbar=dict(title="cosine<br>(text vs frame)"),
                               hovertemplate="%{y}<br>%{x}: cosine %{z:.3f}<extra></extra>"))
    fig.update_layout(title="Semantic units over time: how well each unit's text matches each frame "
                            "(cosine, higher = better; * = unit of the top class)", xaxis_title="frame time",
                      yaxis_autorange="reversed", height=140 + 28 * len(names), margin=dict(l=10, r=10, t=40, b=40))
    return fig


def alignment_heatmap(pred: Prediction) -> go.Figure | None:
    """Word-to-frame cosine of the top class's label (WTI), word weights in the row names.

    None when the model has no WTI head (training-free mode).
    """
    a = pred.alignment
    if a is None:
        return None
    words = [f"{escape_html(w)} (w={weight:.2f})" for w, weight in zip(a.words, a.word_weights)]
    # Two-line frame names (time, then weight) stay level at the app's width: rotated one-line
    # names took most of the figure's height, which left the colour bar a thin line.
    frames = [f"{label}<br>w={weight:.2f}" for label, weight in zip(_frame_labels(pred), a.frame_weights)]
    fig = go.Figure(go.Heatmap(z=a.similarity.tolist(), x=frames, y=words, colorscale="Viridis",
                               colorbar=dict(title="cosine", thickness=16),
                               hovertemplate="%{y} / %{x}: cosine %{z:.3f}<extra></extra>"))
    # Short title lines (plotly does not wrap them: one long line was cut at the app's width), and
    # a plot area of at least ALIGNMENT_MIN_PX, which the colour bar spans, however few the words.
    title = (f"Which words of '{escape_html(a.label)}'<br>match which frames"
             "<br><sup>WTI: w = a word's or frame's weight in the score</sup>")
    fig.update_layout(title=title, xaxis_title="frame (w = its weight)", yaxis_title="word (w = its weight)",
                      yaxis_autorange="reversed", height=ALIGNMENT_MARGIN_PX + max(ALIGNMENT_MIN_PX, 36 * len(words)),
                      xaxis_tickfont_size=10, margin=dict(l=10, r=10, t=90, b=10))
    return fig
