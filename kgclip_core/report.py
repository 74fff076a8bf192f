"""A prediction or a timeline to take away: a self-contained HTML report (with, for a
prediction, an MP4 of the clip with a heatmap).

The report is one HTML file with no scripts and no links out (the frames are PNG data URIs), so
it opens offline and can be mailed: the clip's name, the model and label set, "not sure" when no
label fits, the top-k actions, why the top action and not the runner-up, the sampled frames with
the chosen heatmap, *Why this action* (the top action's own concepts checked against the clip),
its knowledge-graph concepts, the semantic units the model selected, and any warnings. Every text that comes from a user or a file (labels, file names, concepts) is
escaped with ``explain.text.escape_html``.

The video is the clip with the heatmap of the nearest sampled frame overlaid on every frame,
bounded by ``VIDEO_MAX_FRAMES`` (300) frames spread evenly over the clip (a longer clip plays
as a time-lapse), played at its own speed clamped to ``VIDEO_FPS_RANGE`` (2 to 30 fps).

A timeline's report (``kgclip_core.timeline``) is the same kind of page: the clip and the
windows, the segments drawn along the clip's time (an inline SVG, coloured as the app's chart),
and a row per segment with its action, score, "not sure", and the concepts of its action that
its surest window shows, each with a still of that window's middle frame (the first
``MAX_STILLS`` segments; a row each for the rest).
"""

from __future__ import annotations

import base64
import io
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from kgclip_core.explain.figures import UNITS_NOTE, evidence_rule
from kgclip_core.explain.timeline import segment_colours
from kgclip_core.explain.maps import HEATMAP_KINDS, first_map, heatmap_caption, heatmap_choices, heatmaps
from kgclip_core.explain.overlay import overlay
from kgclip_core.explain.text import escape_html
from kgclip_core.explain.why import CONTRAST_COLUMNS, contrast_rows, contrast_summary, unsure_note
from kgclip_core.kg.graph import UNIT_TYPES, KnowledgeGraph
from kgclip_core.prediction import Prediction, Timeline
from kgclip_core.video import FrameSource, read_clip
from kgclip_core.video_out import write_mp4

VIDEO_MAX_FRAMES = 300
VIDEO_FPS_RANGE = (2.0, 30.0)
MAX_STILLS = 100  # a timeline's segments shown with a still: ~20 kB each, the page stays a few MB
STILL_SHORT_SIDE = 112
SEGMENT_CONCEPTS = 5  # concepts listed per segment, best first

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
.frames { display: flex; flex-wrap: wrap; gap: 0.5rem; }
figure { margin: 0; } figure img { height: 10rem; } figcaption { font-size: 0.8rem; color: #555; }
td img { height: 4rem; display: block; } svg text { font-size: 12px; }
.segments td:nth-child(3), .segments td:nth-child(7) { white-space: nowrap; }
.warning { background: #fff3cd; padding: 0.5rem 1rem; border-left: 4px solid #e0a800; }
"""


def chosen_maps(pred: Prediction, kind: str | None = None,
                which: str | None = None) -> tuple[np.ndarray | None, str, str]:
    """The heatmaps [T, H, W] to draw, their name and a line on what they show: map ``which``
    (a name from ``heatmap_choices``) of ``kind``; by default the map shown first
    (``explain.maps.first_map``). (None, "no heatmap", "") when the prediction has none."""
    first_kind, first_which = first_map(pred)
    kinds = [k for k in HEATMAP_KINDS if heatmap_choices(pred, k)]
    kind = kind if kind in kinds else first_kind
    if kind is None:
        return None, "no heatmap", ""
    names = heatmap_choices(pred, kind)
    which = which if which in names else (first_which if kind == first_kind else names[0])
    index = names.index(which) - 1 if which != names[0] else None
    return heatmaps(pred, kind, index), which, heatmap_caption(pred, kind, index)


def report_html(pred: Prediction, kind: str | None = None, which: str | None = None, opacity: float = 0.5) -> str:
    """The prediction as one self-contained HTML page (see the module docstring)."""
    maps, map_name, caption = chosen_maps(pred, kind, which)
    title = f"KG-CLIP: {pred.labels[0]}"
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape_html(title)}</title>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape_html(title)}</h1>",
        _facts(pred),
        *(f"<p class='warning'>{escape_html(w)}</p>" for w in [*filter(None, [unsure_note(pred)]), *pred.warnings]),
        "<h2>Predicted actions</h2>",
        _table(["action", "probability"], [[label, f"{100 * score:.1f}%"] for label, score in zip(pred.labels, pred.scores)]),
        *_contrast(pred),
        f"<h2>Sampled frames with the heatmap: {escape_html(map_name)}</h2>",
        f"<p>{escape_html(caption)}. Colours: black where the map is 0, pale yellow at the frame's maximum "
        f"(opacity {opacity:.2f}).</p>" if maps is not None else "",
        _frames(pred, maps, opacity),
        "<h2>Why this action: the top action's own concepts, checked against the clip</h2>",
        _evidence(pred),
        "<h2>Knowledge-graph concepts of the top action</h2>",
        _concepts(pred),
        "<h2>What else the model saw: the semantic units it selected</h2>",
        _table(["unit", "type", "score", "ranked by", "in top class"],
               [[u.text, u.type.replace("_", " "), f"{u.score:.3f}", f"{u.rank_score:.3f}", "yes" if u.in_top_class else ""]
                for u in pred.units]),
        f"<p>{escape_html(UNITS_NOTE)}</p>" if pred.units else "",
        f"<p><small>Made by KG-CLIP on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.</small></p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def timeline_report_html(line: Timeline, stills: dict[int, np.ndarray] | None = None) -> str:
    """A timeline as one self-contained HTML page (see the module docstring); ``stills`` maps a
    segment's index to the frame shown beside it."""
    stills = stills or {}
    title = f"KG-CLIP timeline: {Path(line.video.path).name}"
    rows = []
    for i, seg in enumerate(line.segments):
        window = line.windows[seg.best_window]
        concepts = ", ".join(("✓ " if e.present else "✗ ") + e.text for e in window.evidence[:SEGMENT_CONCEPTS])
        still = (f"<img src='{_png_data_uri(stills[i])}' alt='segment {i + 1}, {window.start:.1f} s to "
                 f"{window.end:.1f} s'>") if i in stills else ""
        rival = f"{window.labels[1]} ({100 * window.scores[1]:.0f}%)" if len(window.labels) > 1 else ""
        rows.append([still, str(i + 1), f"{seg.start:.1f}–{seg.end:.1f} s", seg.label, f"{100 * seg.score:.0f}%",
                     "not sure" if seg.unsure else "yes", f"{window.start:.1f}–{window.end:.1f} s", rival, concepts])
    cells = ["still", "#", "when", "action", "score", "fits?", "surest window", "its runner-up",
             "its concepts (✓ shown)"]
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape_html(title)}</title>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape_html(title)}</h1>",
        _timeline_facts(line),
        *(f"<p class='warning'>{escape_html(w)}</p>" for w in line.warnings),
        "<h2>What happens when</h2>",
        f"<p>{len(line.segments)} segments: each is consecutive windows with the same top action. Hatched: "
        "most of its windows are not sure (the action does not fit what the clip shows).</p>",
        _timeline_svg(line),
        "<h2>The segments</h2>",
        "<table class='segments'><tr>" + "".join(f"<th>{escape_html(c)}</th>" for c in cells) + "</tr>"
        + "".join("<tr><td>" + row[0] + "</td>" + "".join(f"<td>{escape_html(c)}</td>" for c in row[1:]) + "</tr>"
                  for row in rows) + "</table>",
        "<p>A segment's score is its windows' mean probability of its action; \"fits?\" says whether most of "
        "its windows found what the action needs in the clip. Its surest window is the one most sure of the "
        "action: its runner-up is the action that window ranked second, and the concepts are those of the "
        "action in the knowledge graph, checked against that window's frames (✓: shown there). For heatmaps, "
        "open the clip in the app's timeline and click the segment.</p>",
        f"<p><small>Made by KG-CLIP on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.</small></p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_timeline_report(line: Timeline, html_path: str | Path) -> Path:
    """Write a timeline's HTML report, with a still of each of its first ``MAX_STILLS`` segments'
    surest windows (their middle frames, read from the clip once more)."""
    wanted = {}
    for i, seg in enumerate(line.segments[:MAX_STILLS]):
        frames = line.windows[seg.best_window].frame_indices
        wanted[i] = frames[len(frames) // 2]
    numbers = np.unique(list(wanted.values()))
    stills = {}
    if len(numbers):
        pixels, _, _ = FrameSource(line.video.path, STILL_SHORT_SIDE).read(numbers)
        stills = {i: np.asarray(pixels[int(np.searchsorted(numbers, n))]) for i, n in wanted.items()}
    html_path = Path(html_path)
    html_path.write_text(timeline_report_html(line, stills), encoding="utf-8")
    return html_path


def _timeline_facts(line: Timeline) -> str:
    video = line.video
    rows = [["clip", Path(video.path).name],
            ["video", f"{video.width}x{video.height} px, {video.duration:.1f} s, {video.num_frames} frames"],
            ["model", line.model + (" (RANDOM weights: the predictions are meaningless)" if line.random_weights else "")],
            ["label set", line.label_set],
            ["windows", f"{len(line.windows)} of {line.window_s:g} s every {line.stride_s:g} s, "
                        f"{line.frames_per_window} frames each ({line.frames_decoded} frames decoded)"]]
    return _table(["", ""], rows, header=False)


def _timeline_svg(line: Timeline) -> str:
    """The segments as coloured bars along the clip's time, with a tick every few seconds; the
    action is written in a bar wide enough for it, and is its tooltip in any case."""
    width, bar, duration = 900.0, 36.0, max(line.video.duration, 1e-6)
    colours = segment_colours(line)
    x = lambda t: width * t / duration  # noqa: E731
    items = ["<defs><pattern id='unsure' width='6' height='6' patternUnits='userSpaceOnUse' "
             "patternTransform='rotate(45)'><rect width='3' height='6' fill='#ffffff' fill-opacity='0.6'/>"
             "</pattern></defs>"]
    for i, seg in enumerate(line.segments):
        left, span = x(seg.start), max(x(seg.end) - x(seg.start), 0.5)
        tip = escape_html(f"{i + 1}. {seg.label}: {seg.start:.1f}–{seg.end:.1f} s, {100 * seg.score:.0f}%"
                          + (", not sure" if seg.unsure else ""))
        items.append(f"<g><title>{tip}</title><rect x='{left:.1f}' y='0' width='{span:.1f}' height='{bar:.0f}' "
                     f"fill='{colours[seg.class_name]}' stroke='#ffffff'/>"
                     + (f"<rect x='{left:.1f}' y='0' width='{span:.1f}' height='{bar:.0f}' fill='url(#unsure)'/>"
                        if seg.unsure else "")
                     + (f"<text x='{left + 3:.1f}' y='{bar / 2 + 4:.0f}' fill='#ffffff'>"
                        f"{escape_html(_fitted(seg.label, span))}</text>" if span > 40 else "") + "</g>")
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if duration / s <= 12)
    for t in np.arange(0.0, duration + 1e-9, step):
        items.append(f"<line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{bar:.0f}' y2='{bar + 5:.0f}' stroke='#555'/>"
                     f"<text x='{x(t):.1f}' y='{bar + 18:.0f}' text-anchor='middle' fill='#555'>"
                     f"{int(t // 60)}:{int(t % 60):02d}</text>")
    return (f"<svg viewBox='-20 0 {width + 40:.0f} {bar + 24:.0f}' width='100%' role='img' "
            f"aria-label='segments along the clip'>{''.join(items)}</svg>")


def _fitted(label: str, span: float) -> str:
    """The label cut to what a bar ``span`` units wide holds (about 7 units a character)."""
    room = max(int(span / 7) - 1, 1)
    return label if len(label) <= room else label[:max(room - 1, 1)] + "…"


def _facts(pred: Prediction) -> str:
    video = pred.video
    rows = [["clip", Path(video.path).name],
            ["video", f"{video.width}x{video.height} px, {video.duration:.1f} s, {video.num_frames} frames"],
            ["model", pred.model + (" (RANDOM weights: the predictions are meaningless)" if pred.random_weights else "")],
            ["label set", pred.label_set]]
    return _table(["", ""], rows, header=False)


def _table(headers: list[str], rows: list[list[object]], header: bool = True) -> str:
    head = "<tr>" + "".join(f"<th>{escape_html(h)}</th>" for h in headers) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{escape_html(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _png_data_uri(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _frames(pred: Prediction, maps: np.ndarray | None, opacity: float) -> str:
    figures = []
    for i, (frame, t) in enumerate(zip(pred.frames, pred.timestamps)):
        image = frame if maps is None else overlay(frame, maps[i], opacity)
        caption = f"frame {pred.frame_indices[i]} at {t:.2f} s"
        figures.append(f"<figure><img src='{_png_data_uri(image)}' alt='{escape_html(caption)}'>"
                       f"<figcaption>{escape_html(caption)}</figcaption></figure>")
    return f"<div class='frames'>{''.join(figures)}</div>"


def _evidence(pred: Prediction) -> str:
    if not pred.evidence:
        return "<p>The top action has no knowledge-graph concepts to check.</p>"
    rows = [["✓" if e.present else "✗", e.text, e.type.replace("_", " "), f"{e.score:.3f}",
             f"{pred.timestamps[e.best_frame]:.2f} s"] for e in pred.evidence]
    shown = sum(e.present for e in pred.evidence)
    rule = escape_html(evidence_rule(pred))
    note = f"<p>{shown} of {len(pred.evidence)} concepts are shown by the clip: ✓ when {rule}.</p>"
    return _table(["shown", "concept", "type", "score", "best frame"], rows) + note


def _contrast(pred: Prediction) -> list[str]:
    if pred.contrast is None:
        return []
    return [f"<h2>Why {escape_html(pred.contrast.label)} and not {escape_html(pred.contrast.rival)}</h2>",
            f"<p>{escape_html(contrast_summary(pred.contrast))}</p>",
            _table(CONTRAST_COLUMNS, contrast_rows(pred.contrast)) if pred.contrast.own or pred.contrast.rival_own else ""]


def _concepts(pred: Prediction) -> str:
    if not pred.kg:
        return "<p>No knowledge-graph entry.</p>"
    kg = KnowledgeGraph.from_json(pred.kg)
    shown = {e.text for e in pred.evidence if e.present}  # a unit is a text, whatever kinds of concept it is
    action = kg.graph.nodes[kg.action_node(pred.class_names[0])] if kg.has_action(pred.class_names[0]) else {}
    items = [f"<p>{escape_html(action['description'])}</p>"] if action.get("description") else []
    for unit_type in UNIT_TYPES:
        labels = sorted({d["label"] for _, d in kg.graph.nodes(data=True) if d["type"] == unit_type})
        if labels:
            marked = ", ".join(escape_html(label) + (" ✓" if label in shown else "") for label in labels)
            items.append(f"<p><b>{escape_html(unit_type.replace('_', ' '))}s:</b> {marked}</p>")
    return "\n".join(items)


def overlay_video(pred: Prediction, path: str | Path, kind: str | None = None, which: str | None = None,
                  opacity: float = 0.5) -> Path:
    """Write the clip with the chosen heatmap overlaid as an H.264 MP4 (see the module docstring)."""
    maps, _, _ = chosen_maps(pred, kind, which)
    count = min(pred.video.num_frames, VIDEO_MAX_FRAMES)
    height, width = pred.frames.shape[1:3]
    clip = read_clip(pred.video.path, num_frames=count, short_side=min(height, width))
    frames, indices = clip.frames[0], clip.indices[0]
    sampled = np.asarray(pred.frame_indices)
    nearest = np.abs(indices[:, None] - sampled[None, :]).argmin(axis=1)
    fps = float(np.clip(count / max(pred.video.duration, 1e-3), *VIDEO_FPS_RANGE))
    drawn = (frame if maps is None else overlay(frame, maps[k], opacity) for frame, k in zip(frames, nearest))
    write_mp4(drawn, path, fps)
    return Path(path)


def write_report(pred: Prediction, html_path: str | Path, kind: str | None = None, which: str | None = None,
                 opacity: float = 0.5) -> tuple[Path, Path]:
    """Write the HTML report and, beside it with the suffix ``.mp4``, the heatmap video."""
    html_path = Path(html_path)
    html_path.write_text(report_html(pred, kind, which, opacity), encoding="utf-8")
    return html_path, overlay_video(pred, html_path.with_suffix(".mp4"), kind, which, opacity)
