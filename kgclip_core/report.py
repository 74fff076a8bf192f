"""A prediction to take away: a self-contained HTML report and an MP4 of the clip with a heatmap.

The report is one HTML file with no scripts and no links out (the frames are PNG data URIs), so
it opens offline and can be mailed: the clip's name, the model and label set, "not sure" when no
label fits, the top-k actions, why the top action and not the runner-up, the sampled frames with
the chosen heatmap, *Why this action* (the top action's own concepts checked against the clip),
its knowledge-graph concepts, the semantic units the model selected, and any warnings. Every text that comes from a user or a file (labels, file names, concepts) is
escaped with ``explain.text.escape_html``.

The video is the clip with the heatmap of the nearest sampled frame overlaid on every frame,
bounded by ``VIDEO_MAX_FRAMES`` (300) frames spread evenly over the clip (a longer clip plays
as a time-lapse), played at its own speed clamped to ``VIDEO_FPS_RANGE`` (2 to 30 fps).
"""

from __future__ import annotations

import base64
import io
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from kgclip_core.explain.figures import UNITS_NOTE, evidence_rule
from kgclip_core.explain.maps import HEATMAP_KINDS, first_map, heatmap_caption, heatmap_choices, heatmaps
from kgclip_core.explain.overlay import overlay
from kgclip_core.explain.text import escape_html
from kgclip_core.explain.why import CONTRAST_COLUMNS, contrast_rows, contrast_summary, unsure_note
from kgclip_core.kg.graph import UNIT_TYPES, KnowledgeGraph
from kgclip_core.prediction import Prediction
from kgclip_core.video import read_clip
from kgclip_core.video_out import write_mp4

VIDEO_MAX_FRAMES = 300
VIDEO_FPS_RANGE = (2.0, 30.0)

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
.frames { display: flex; flex-wrap: wrap; gap: 0.5rem; }
figure { margin: 0; } figure img { height: 10rem; } figcaption { font-size: 0.8rem; color: #555; }
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
