"""Write the timeline experiment's section of docs/TIMELINE.md from the committed rows."""

from __future__ import annotations

import numpy as np

from experiments import jsonl
from experiments.sections import replace_section
from experiments.timeline.common import (COMMAND, REPORT, ROWS, SECTION, SETTINGS, TARGET_BOUNDARY_S, TARGET_RATIO,
                                         VIDEOS)


def nearest(points: list[float], to: list[float]) -> list[float]:
    """The distance of each of ``points`` to the nearest of ``to`` (seconds)."""
    return [min(abs(p - t) for t in to) for p in points] if to else []


def summary(rows: list[dict]) -> dict:
    """One setting's measures over its videos."""
    found_err = [e for r in rows for e in nearest(r["found"], r["boundaries"])]
    true_err = [e for r in rows for e in nearest(r["boundaries"], r["found"])]
    frame_acc = 100 * sum(r["frames_right"] for r in rows) / sum(r["frames"] for r in rows)
    clip_acc = 100 * sum(r["clips_right"] for r in rows) / sum(r["clips"] for r in rows)
    return {
        "videos": len(rows), "minutes": sum(r["duration"] for r in rows) / 60, "frame_acc": frame_acc,
        "clip_acc": clip_acc, "ratio": frame_acc / clip_acc, "true": sum(len(r["boundaries"]) for r in rows),
        "found": len(found_err), "found_median": float(np.median(found_err)) if found_err else float("nan"),
        "found_p90": float(np.percentile(found_err, 90)) if found_err else float("nan"),
        "true_within": 100 * np.mean([e <= TARGET_BOUNDARY_S for e in true_err]) if true_err else float("nan"),
        "windows": sum(r["windows"] for r in rows), "decoded": sum(r["frames_decoded"] for r in rows),
        "seconds": sum(r["seconds"] for r in rows),
    }


def write() -> None:
    """Rewrite the section from the rows (a note when there are none yet)."""
    rows = jsonl.read(ROWS / VIDEOS)
    if not rows:
        replace_section(REPORT, SECTION, f"Not measured yet: run `{COMMAND}`.")
        return
    stats = {(w, s): summary([r for r in rows if (r["window"], r["stride"]) == (w, s)]) for w, s in SETTINGS
             if any((r["window"], r["stride"]) == (w, s) for r in rows)}
    first = next(iter(stats.values()))
    lines = [
        f"Made by `{COMMAND}` (rows: `experiments/timeline/rows/{VIDEOS}`): {first['videos']} stitched videos "
        f"({first['minutes']:.1f} min, {first['true']} true boundaries) of the demo checkpoint's 24 actions, "
        "six segments each, a segment one to three fresh clips of one action (2.5 to 7.5 s). Frame-level: each "
        "frame of a video labelled by the segment covering its centre. Clip-level: the same model on each clip "
        "the videos were stitched from, read from the video (`Predictor.predict(span=...)`). Boundary error: "
        "each found boundary's distance to the nearest true one.",
        "",
        "| window, stride | frame-level acc. | clip-level acc. (same clips) | ratio | found / true boundaries "
        "| found boundary error: median, 90th pct. | true boundaries with one found within 1 s "
        "| windows / frames decoded | seconds (2-core CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (w, s), m in stats.items():
        lines.append(f"| {w:g} s, {s:g} s | {m['frame_acc']:.1f}% | {m['clip_acc']:.1f}% | {m['ratio']:.3f} "
                     f"| {m['found']} / {m['true']} | {m['found_median']:.2f} s, {m['found_p90']:.2f} s "
                     f"| {m['true_within']:.0f}% | {m['windows']} / {m['decoded']} | {m['seconds']:.0f} |")
    default = stats.get(SETTINGS[0])
    if default is not None:
        lines += ["", f"Targets, at the defaults ({SETTINGS[0][0]:g} s windows every {SETTINGS[0][1]:g} s):", "",
                  f"- frame-level accuracy at least {TARGET_RATIO:.0%} of the clip-level: {default['frame_acc']:.1f}% "
                  f"against {default['clip_acc']:.1f}% (ratio {default['ratio']:.3f}): "
                  f"{'met' if default['ratio'] >= TARGET_RATIO else 'missed'}",
                  f"- median boundary error at most {TARGET_BOUNDARY_S:g} s: {default['found_median']:.2f} s: "
                  f"{'met' if default['found_median'] <= TARGET_BOUNDARY_S else 'missed'}"]
    replace_section(REPORT, SECTION, "\n".join(lines))
