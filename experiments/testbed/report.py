"""Write the testbed's results table (``docs/TESTBED.md``) from the runs' rows.

Every number is a mean ± sample standard deviation over the seeds; nothing is selected or
dropped. Differences against plain CLIP are listed with whether they exceed the seeds'
spread, so the table can be read without a narrative.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from experiments.sections import replace_section
from experiments.testbed import collapse, run
from experiments.testbed.data import CROP_AREA
from experiments.testbed.train import TINY_HEADS, VARIANTS, RunSpec

COMMAND = "python -m experiments.testbed"
POINTING_COLUMNS = ("regions", "unit", "integrated gradients", "random patch", "random pixel")


def _stats(values: list[float]) -> tuple[float, float] | None:
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _fmt(stat: tuple[float, float] | None) -> str:
    return "–" if stat is None else f"{stat[0]:.1f} ± {stat[1]:.1f}"


def _column(rows: list[dict], variant: str, shots: int, frames: int, metric: tuple[str, str]) -> list[float]:
    section, key = metric
    return [r[section][key] for r in rows
            if r["variant"] == variant and r["shots"] == shots and r["num_frames"] == frames
            and section in r and key in r[section]]


def accuracy_columns() -> list[tuple[str, int, int, tuple[str, str]]]:
    """(header, shots, frames, (section, metric)) of every accuracy column."""
    t = max(run.FRAMES)
    cols = [("supervised", 0, t, ("val", "top1"))]
    cols += [(f"few-shot K={k}", k, t, ("val", "top1")) for k in run.SHOTS]
    cols += [("zero-shot novel (logits)", 0, t, ("novel", "top1")),
             ("zero-shot novel (KG units)", 0, t, ("novel", "kg_units_top1"))]
    cols += [(f"T={f}", 0, f, ("val", "top1")) for f in run.FRAMES]
    return cols


def accuracy_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Mean ± std per variant and column (``columns``: the headers to keep; default all)."""
    cols = [c for c in accuracy_columns() if columns is None or c[0] in columns]
    lines = ["| model | " + " | ".join(c[0] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for variant in VARIANTS:
        cells = [_fmt(_stats(_column(rows, variant, s, f, m))) for _, s, f, m in cols]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def differences(rows: list[dict]) -> str:
    """Each variant minus plain CLIP, per column; '*' where the gap exceeds both spreads."""
    cols = [c for c in accuracy_columns() if c[3] != ("novel", "kg_units_top1")]
    lines = ["| vs plain CLIP | " + " | ".join(c[0] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for variant in list(VARIANTS)[1:]:
        cells = []
        for _, s, f, m in cols:
            a, b = _stats(_column(rows, variant, s, f, m)), _stats(_column(rows, "plain CLIP", s, f, m))
            if a is None or b is None:
                cells.append("–")
                continue
            gap = a[0] - b[0]
            cells.append(f"{gap:+.1f}{'*' if abs(gap) > a[1] + b[1] else ''}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pointing_table(rows: list[dict]) -> str:
    lines = ["| model | " + " | ".join(POINTING_COLUMNS) + " |", "|---" * (len(POINTING_COLUMNS) + 1) + "|"]
    for variant in VARIANTS:
        sup = [r for r in rows if r["variant"] == variant and "pointing" in r]
        cells = [_fmt(_stats([r["pointing"][c] for r in sup if c in r["pointing"]])) for c in POINTING_COLUMNS]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _seconds_per_step(rows: list[dict]) -> float:
    return sum(r["seconds"] for r in rows) / max(1, sum(r["steps"] for r in rows))


def collapse_section(work: Path | None, classes: int) -> str:
    """The class-embedding traces of ``collapse.py`` as a table (or how to make them)."""
    path = None if work is None else work / collapse.RESULT
    if path is None or not path.is_file():
        return "Not measured in this work folder (`--only collapse`)."
    d = json.loads(path.read_text(encoding="utf-8"))
    lines = ["| step | loss, text trained | class cosine, text trained | loss, text frozen | class cosine, text frozen |",
             "|---|---|---|---|---|"]
    for a, b in zip(d["trained"], d["frozen"]):
        lines.append(f"| {a['step']} | {a['loss']:.3f} | {a['class_cosine']:.3f} | {b['loss']:.3f} | {b['class_cosine']:.3f} |")
    first, last = d["trained"][0], d["trained"][-1]
    collapsed = last["class_cosine"] > 0.99
    uniform = abs(last["loss"] - np.log(classes)) < 0.01
    return (
        f"With the text tower trained, the mean cosine of the class embeddings goes from "
        f"{first['class_cosine']:.3f} to {last['class_cosine']:.3f} in {last['step']} steps"
        + (": they collapse onto one direction" if collapsed else "")
        + (", and the loss ends at that of a uniform prediction" if uniform else "")
        + ". Frozen, they stay where the random tower put them.\n\n"
        f"One run per protocol (plain CLIP, T=2, seed 0, {collapse.STEPS} steps, the grid's optimiser; "
        "`experiments/testbed/collapse.py`): training loss and mean pairwise cosine of the "
        f"{classes} class embeddings (loss of a uniform prediction: ln {classes} = {np.log(classes):.3f}).\n\n" + "\n".join(lines)
    )


def write(rows: list[dict], path: Path, machine: str, wall_seconds: float | None, data: dict,
          work: Path | None = None, frozen_rows: list[dict] | None = None, processes: int = 2) -> Path:
    """Write the results document to ``path``: ``rows`` of the trained-text grid (``wall_seconds``:
    its wall time, None if unknown) and ``frozen_rows`` of the frozen-text grid, for comparison."""
    spec = RunSpec("full KG-CLIP", 0)
    frozen_rows = frozen_rows or []
    (sup, few), (frozen_sup, frozen_few) = run.STEPS[True], run.STEPS[False]
    run_seconds = sum(r["seconds"] for r in rows)
    wall = "unknown" if wall_seconds is None else f"{wall_seconds / 60:.0f} min"
    text = f"""# Learnability testbed: KG-CLIP from scratch on synthetic stick-figure actions

Generated by `{COMMAND} --only grid`, `--only collapse`, then `--only report` (plain `{COMMAND}`
runs all of them); do not edit by hand. The demo checkpoint is now fine-tuned from the foundation
(section "The papers' questions" below).
Options: `--work DIR` (scratch folder, default `/tmp/kgclip_testbed`), `--processes N`,
`--only grid|collapse|report`, `--frozen-text` (the grid with the text tower frozen, for the
comparison table). Finished runs are kept in `DIR/results.jsonl`, so an interrupted run resumes.

**Machine**: {machine}. Wall time of the trained-text grid: {wall} ({len(rows)} runs,
{run_seconds / 60:.0f} min of run time summed over its process pool of {processes}); rendering and decoding the data set once takes a
few minutes more.

## Set-up

- Data: `kgclip synth` clips (112 px, 40 frames, 16 fps; backgrounds, distractors, camera
  shake, zoom, drift, noise), label set `synthetic` ({data['train']['classes']} classes):
  {run.PER_CLASS - run.VAL_PER_CLASS} training and {run.VAL_PER_CLASS} validation clips per class
  (data-set seed 0); `synthetic_novel` ({data['novel']['classes']} classes, {run.NOVEL_PER_CLASS}
  clips each, seed 1) is never trained on. Frames are decoded once, as the Predictor reads them.
- Model: `kgclip-tiny` (64 px, patch 16, 2 layers, width 64) from **random weights** (no
  pretrained CLIP exists here). **From-scratch protocol: the text tower is trained too**
  (`ModelConfig.train_text`; class, unit and word embeddings are recomputed with gradients every
  step), since a frozen random text tower gives nearly identical class embeddings; whether
  training it helps is what the tables below measure. Heads: {TINY_HEADS['num_regions']}
  MRA regions, SU top-{TINY_HEADS['su_top_k']}, {TINY_HEADS['decoder_layers']}-layer decoder,
  {TINY_HEADS['triplet_layers']}-layer triplet encoder.
- Variants: plain CLIP = `ModelConfig.plain_clip` (mean-pooled frames, cosine with the prompt
  ensemble); +WTI; +MRA/SU/decoder; +KG triplet (triplet term and losses with the label set's
  KG triples and units); full = all of them.
- Training: AdamW lr {spec.optim.lr} (both towers and the heads alike), weight decay {spec.optim.weight_decay},
  {spec.warmup_fraction:.0%} warmup then cosine, batch {spec.batch_size}, gradient clip
  {spec.optim.clip_grad_norm}; TSN frame sampling and one random square crop
  ({CROP_AREA[0]:.0%} to {CROP_AREA[1]:.0%} of the area) per clip, no flip (left and right are different classes).
  Supervised runs: {sup} steps; few-shot runs (K clips per class drawn by the
  library's `few_shot` split with the run's seed): {few} steps. Seeds {', '.join(map(str, run.SEEDS))}.
  **Budget**: the runs are short because the whole grid had to fit in about an hour of a shared
  2-core CPU; training the text tower makes a step costlier ({_seconds_per_step(rows):.2f} s against
  {_seconds_per_step(frozen_rows):.2f} s per step, training and evaluation of a run together, over the grid), so
  this grid has 3/4 of the frozen-text grid's steps ({frozen_sup} and {frozen_few}). The models are far from
  converged and the absolute numbers are low.
- Evaluation: top-1 (%) on the validation clips, segment-centre frames. Chance: {100 / data['train']['classes']:.1f}%
  on `synthetic`, {100 / data['novel']['classes']:.1f}% on `synthetic_novel`. Zero-shot: the supervised T={max(run.FRAMES)}
  models score the novel classes from their texts and KG (`KnowledgeGraph.for_label_set("synthetic_novel")`):
  "logits" is the model's own score; "KG units" (triplet models only) scores a class by the mean
  video-movement triplet score of its KG units (part-state phrases all seen in training).

## Accuracy (top-1 %, mean ± std over {len(run.SEEDS)} seeds)

"supervised" and "T={max(run.FRAMES)}" are the same runs; few-shot runs use T={max(run.FRAMES)}.

{accuracy_table(rows)}

Difference of the mean against plain CLIP (points); `*` where it is larger than the two
standard deviations added:

{differences(rows)}

### For comparison: the text tower frozen (the previous protocol)

The same grid with the text tower left at its random initialisation (cached embeddings, no
gradient; `--frozen-text`), {frozen_sup} supervised and {frozen_few} few-shot steps, {len(frozen_rows)} runs:

{accuracy_table(frozen_rows, ["supervised", "few-shot K=8", "zero-shot novel (logits)", "T=2", "T=4"])}

## Do the class embeddings separate?

{collapse_section(work, data['train']['classes'])}

## Explanation faithfulness: pointing game (hit rate %, mean ± std over seeds)

{pointing_table(rows)}

Supervised T={max(run.FRAMES)} models, {run.POINTING_CLIPS_PER_CLASS} validation clips per class, every sampled
frame in which some body part is not in its resting state (see `experiments/testbed/pointing.py`).
A hit: the map's peak lies in the ground-truth box of a moving part. "regions": mean of the MRA
maps; "unit": map of the most-weighted selected semantic unit; "integrated gradients": captum
`IntegratedGradients` of the predicted class on the input pixels. Baselines are exact
expectations: "random patch" (peak at a uniformly drawn patch centre, where a 4x4 grid map's
peak must be) and "random pixel" (peak anywhere).
"""
    replace_section(path, "testbed", text)
    return path
