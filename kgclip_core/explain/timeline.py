"""A long clip's timeline (``kgclip_core.timeline``) drawn: its segments as bars along the clip's
time over each window's confidence, and the same in words.

Each segment's bar carries its index and start in ``customdata``, so a page can tell which one a
click picked (the app explains it and moves its player there). Labels can be typed by users:
chart text is escaped (plotly reads a few HTML tags), Markdown too.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kgclip_core.explain.text import escape_html, escape_markdown
from kgclip_core.prediction import Timeline

# The actions' colours (plotly's qualitative "Plotly" palette), given in order of first appearance.
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880", "#ff97ff",
           "#fecb52")
UNSURE_COLOUR = "#9e9e9e"


def segment_colours(line: Timeline) -> dict[str, str]:
    """A colour per action (class name) of the timeline, in order of first appearance: an action
    keeps its colour in every segment, in the chart and in the report alike."""
    colours: dict[str, str] = {}
    for seg in line.segments:
        colours.setdefault(seg.class_name, PALETTE[len(colours) % len(PALETTE)])
    return colours


def timeline_chart(line: Timeline) -> go.Figure:
    """The segments as bars over time (click one: its ``customdata`` is [segment index, start s]),
    and under them each window's score of its top action, the "not sure" windows in grey."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.55, 0.45], vertical_spacing=0.08)
    colours = segment_colours(line)
    for i, seg in enumerate(line.segments):
        colour = colours[seg.class_name]
        label = escape_html(seg.label)
        fig.add_trace(go.Bar(
            x=[seg.end - seg.start], base=[seg.start], y=["actions"], orientation="h", customdata=[[i, seg.start]],
            marker=dict(color=colour, line=dict(color="#ffffff", width=1),
                        pattern_shape="/" if seg.unsure else ""),
            text=[label], textposition="inside", insidetextanchor="middle", textangle=0, showlegend=False,
            hovertemplate=(f"<b>{label}</b><br>%{{base:.1f}} s to {seg.end:.1f} s<br>score {seg.score:.0%}"
                           f"{' (not sure)' if seg.unsure else ''}<br>click to explain and play from here"
                           "<extra></extra>")), row=1, col=1)
    centres = [(w.start + w.end) / 2 for w in line.windows]
    fig.add_trace(go.Scatter(
        x=centres, y=[w.scores[0] for w in line.windows], mode="lines+markers", showlegend=False,
        line=dict(color="#5f6b7a", width=1), customdata=[[w.start, w.end] for w in line.windows],
        marker=dict(size=5, color=[UNSURE_COLOUR if w.unsure else colours[w.class_names[0]] for w in line.windows]),
        text=[escape_html(w.labels[0]) + (" (not sure)" if w.unsure else "") for w in line.windows],
        hovertemplate="window %{customdata[0]:.1f}-%{customdata[1]:.1f} s<br>%{text}: %{y:.0%}<extra></extra>"),
        row=2, col=1)
    fig.update_layout(barmode="overlay", height=300, margin=dict(l=10, r=10, t=40, b=40), clickmode="event",
                      title=f"What happens when: {len(line.segments)} segments of {len(line.windows)} windows "
                            f"({line.window_s:g} s every {line.stride_s:g} s)"
                            + (" (RANDOM WEIGHTS)" if line.random_weights else ""))
    fig.update_xaxes(range=[0, line.video.duration], row=1, col=1)
    fig.update_xaxes(range=[0, line.video.duration], title_text="time in the clip (s)", row=2, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", title_text="window's score", row=2, col=1)
    return fig


def timeline_markdown(line: Timeline) -> str:
    """The segments in words, one line each (escaped), "not sure" said where it applies."""
    rows = [f"- **{seg.start:.1f}–{seg.end:.1f} s**: {escape_markdown(seg.label)} ({seg.score:.0%}"
            f"{', not sure' if seg.unsure else ''})" for seg in line.segments]
    return "\n".join([f"**{len(line.segments)} segments** over {line.video.duration:.1f} s "
                      f"({len(line.windows)} windows of {line.window_s:g} s every {line.stride_s:g} s). "
                      "Click a segment to see its explanation and play the clip from there.", *rows])
