"""The "papers" section of docs/TESTBED.md, written from the saved rows of the work folder."""

from __future__ import annotations

import json
import os
import platform
from collections import Counter
from pathlib import Path

import torch

from experiments.papers import common
from experiments.papers.stats import mean_sd, paired_bootstrap
from experiments.sections import replace_section

# Columns of the main table: (title, setting of the run, key of its per-clip results).
COLUMNS = (("supervised", "supervised", "test/synthetic"), ("K=2", "K=2", "test/synthetic"),
           ("K=4", "K=4", "test/synthetic"), ("K=8", "K=8", "test/synthetic"),
           ("novel by description, after supervised", "supervised", "test/novel/description"),
           ("novel by name, after supervised", "supervised", "test/novel/name"),
           ("novel by description, after K=2", "K=2", "test/novel/description"))
CONTROLS = ("foundation zero-shot", "linear probe", "tiny CNN")
BASELINE = "plain CLIP"


def _acc(correct: list[int]) -> float:
    return 100.0 * sum(correct) / len(correct)


def per_seed(rows: list[dict], variant: str, setting: str, key: str, **match) -> dict[int, list[int]]:
    """Per-clip correctness by seed of the rows of one cell."""
    out = {}
    for r in rows:
        if r["variant"] != variant or key not in r:
            continue
        if r["setting"] not in (setting, "any") or any(r.get(k) != v for k, v in match.items()):
            continue
        out[r["seed"]] = r[key]
    return out


def cell(results: dict[int, list[int]]) -> str:
    """mean ± sd (n seeds), or a dash when the cell has not run."""
    if not results:
        return "-"
    m, sd = mean_sd([_acc(c) for c in results.values()])
    return f"{m:.1f} ± {sd:.1f} ({len(results)})" if len(results) > 1 else f"{m:.1f} (1)"


def diff_cell(a: dict[int, list[int]], b: dict[int, list[int]]) -> str:
    """The paired difference and its 95% interval; marked when the interval excludes zero."""
    result = paired_bootstrap(a, b)
    if result is None:
        return "-"
    d, lo, hi = result
    mark = " *" if lo > 0 or hi < 0 else ""
    return f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]{mark}"


def main_tables(rows: list[dict], control: list[dict]) -> tuple[str, str]:
    """Accuracy per variant and setting; paired differences against plain CLIP."""
    arm = dict(train_text=True, papers=False)
    head = "| model | " + " | ".join(c[0] for c in COLUMNS) + " |\n|---|" + "---:|" * len(COLUMNS)
    acc, diffs = [head], [head]
    for variant in common.VARIANTS:
        acc.append(f"| {variant} | " + " | ".join(cell(per_seed(rows, variant, s, k, **arm)) for _, s, k in COLUMNS)
                   + " |")
        if variant != BASELINE:
            diffs.append(f"| {variant} | " + " | ".join(
                diff_cell(per_seed(rows, variant, s, k, **arm), per_seed(rows, BASELINE, s, k, **arm))
                for _, s, k in COLUMNS) + " |")
    for variant in CONTROLS:
        acc.append(f"| *{variant}* | " + " | ".join(cell(per_seed(control, variant, s, k)) for _, s, k in COLUMNS)
                   + " |")
    return "\n".join(acc), "\n".join(diffs)


def frames_table(rows: list[dict], control: list[dict]) -> str:
    """Supervised accuracy at 2, 4 and 8 frames."""
    settings = (("T=2", "T=2"), ("T=4", "T=4"), ("T=8", "supervised"))
    out = ["| model | " + " | ".join(t for t, _ in settings) + " |\n|---|" + "---:|" * len(settings)]
    for variant in (BASELINE, "full KG-CLIP"):
        out.append(f"| {variant} | " + " | ".join(
            cell(per_seed(rows, variant, s, "test/synthetic", train_text=True, papers=False)) for _, s in settings) + " |")
    out.append("| *tiny CNN* | " + " | ".join(cell(per_seed(control, "tiny CNN", s, "test/synthetic"))
                                             for _, s in settings) + " |")
    return "\n".join(out)


def arms_table(rows: list[dict]) -> str:
    """The papers' own choices: the text tower frozen, and the fidelity switches on."""
    arms = ((BASELINE, "both towers", dict(train_text=True, papers=False)),
            (BASELINE, "text tower frozen", dict(train_text=False, papers=False)),
            ("full KG-CLIP", "both towers", dict(train_text=True, papers=False)),
            ("full KG-CLIP", "text tower frozen", dict(train_text=False, papers=False)),
            ("full KG-CLIP", "both towers, papers' switches", dict(train_text=True, papers=True)))
    cols = COLUMNS[:2] + COLUMNS[4:]  # supervised, K=2 and the novel compositions
    out = ["| model | arm | " + " | ".join(c[0] for c in cols) + " |\n|---|---|" + "---:|" * len(cols)]
    for variant, name, match in arms:
        out.append(f"| {variant} | {name} | " + " | ".join(cell(per_seed(rows, variant, s, k, **match))
                                                          for _, s, k in cols) + " |")
    return "\n".join(out)


def dev_table(dev: list[dict]) -> str:
    """The development sweep: backbone learning rate for plain and full."""
    keys = (("K=2", "dev/synthetic"), ("K=2", "dev/novel/description"))
    out = ["| backbone lr | plain, K=2 | full, K=2 | plain, novel | full, novel |\n|---|---:|---:|---:|---:|"]
    for lr in common.DEV_LRS:
        cells = [cell(per_seed(dev, v, s, k, lr=lr)) for s, k in keys for v in (BASELINE, "full KG-CLIP")]
        out.append(f"| {lr:g} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
    return "\n".join(out)


def targets(rows: list[dict], summary: dict | None) -> str:
    """The issue's targets, met or not, from the measured numbers."""
    arm = dict(train_text=True, papers=False)
    lines = []
    if summary:
        fresh = summary["fresh"]["correct"]
        ok = summary["test"]["top1"] >= 95.0
        lines.append(f"- Demo checkpoint at least 95% top-1 on fresh clips of the 24 classes: "
                     f"{summary['test']['top1']:.1f}% on the test split's {summary['test_clips']} clips, "
                     f"{fresh} through the Predictor: {'met' if ok else 'missed'}")
    for title, setting, key, need in (("few-shot K=2", "K=2", "test/synthetic", 5.0),
                                      ("zero-shot on the novel compositions (by description), after supervised",
                                       "supervised", "test/novel/description", 10.0),
                                      ("zero-shot on the novel compositions (by description), after K=2",
                                       "K=2", "test/novel/description", 10.0)):
        result = paired_bootstrap(per_seed(rows, "full KG-CLIP", setting, key, **arm),
                                  per_seed(rows, BASELINE, setting, key, **arm))
        if result is None:
            lines.append(f"- Full KG-CLIP vs plain CLIP, {title}: not run yet")
            continue
        d, lo, hi = result
        met = d >= need and lo > 0
        lines.append(f"- Full KG-CLIP vs plain CLIP, {title}, at least +{need:.0f} points with an interval "
                     f"excluding zero: {d:+.1f} [{lo:+.1f}, {hi:+.1f}]: {'met' if met else 'missed'}")
    return "\n".join(lines)


def machine() -> str:
    """The machine writing the report, in words."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), {gpu}, torch {torch.__version__}"


def write(work: Path, report: Path) -> None:
    """Rewrite the section from the rows saved in ``work``."""
    rows = list(common.read_rows(work / common.RESULTS).values())
    dev = list(common.read_rows(work / common.DEV).values())
    control = list(common.read_rows(work / common.CONTROLS).values())
    demo_path = work / common.DEMO
    summary = json.loads(demo_path.read_text()) if demo_path.is_file() else None
    acc, diffs = main_tables(rows, control)
    seconds = sum(r.get("seconds", 0) for r in rows + dev)
    body = f"""# The papers' questions, answered on the foundation

Generated by `{common.COMMAND}` (resumable; `--only report` rewrites this section from the saved
results, `--budget-min N` stops starting runs after N minutes); do not edit by hand.

**Machine**: {machine()}. **Training time** of the {len(rows) + len(dev)} grid and development runs:
{seconds / 60:.0f} min (sum of the runs, on a machine other jobs shared: upper bounds).

{foundation_text(rows + dev + control, summary)}

## Set-up

- Every model starts from the foundation (`{common.FOUNDATION}`, the `{common.BACKBONE}` CLIP pretrained on
  the synthetic world's captions, above) and is fine-tuned as the papers do: both towers trainable, AdamW at
  backbone lr {common.LR:g} with 10x for the new modules, weight decay 0.2, betas 0.9/0.98, 10% warmup then
  cosine, gradient norm clipped at 1, batch {common.BATCH}, random crops (no flips: left and right are
  different classes). Supervised: {common.STEPS['supervised']} steps; few-shot: {common.STEPS['few-shot']}.
  Every variant gets the same class text, the KG description.
- Heads sized for a 64-wide backbone: 4 MRA regions, 4 selected units, a 1-layer decoder, a 1-layer
  triplet encoder.
- Variants: plain CLIP (mean-pooled frames, video-text cosine), +WTI, +MRA/SU/decoder (ASU), +KG triplet
  (KG-CLIP), full (all of them). Controls: *foundation zero-shot* (untrained, by description); *linear probe*
  (logistic regression on the frozen foundation's mean frame embedding); *tiny CNN* ((2+1)-D, from scratch,
  the same clips, crops and steps: what the data alone gives at this step budget, not a ceiling); *full, no KG losses* (the
  full model's parameters, the triplet encoder trained through the classification loss only, no KG triple
  contrasts); *full, shuffled KG* (every class gets another class's units and edges, a random derangement).
- Data: {common.TRAIN_PER_CLASS} training clips per class of `synthetic` (data-set seed 0); development split
  (seed {common.SPLIT_SEEDS['dev']}) and test split (seed {common.SPLIT_SEEDS['test']}): 20 clips per class of
  the 24 classes and 30 per class of the 8 novel compositions (`synthetic_novel`, never trained on), read at
  8 frames as the app reads them. Few-shot K draws K clips per class per seed (the same for every variant).
  Seeds: {', '.join(map(str, common.SEEDS))}.
- Chosen on the **development** split: the backbone learning rate (table below; seed 0). Everything else
  is reported on the **test** split, read once per run.
- Statistics: mean ± sd over seeds (n seeds); paired differences against plain CLIP with 95% bootstrap
  intervals, resampling seeds and test clips together ({'*'}: the interval excludes zero).

## Top-1 (%), test split

{acc}

## Difference to plain CLIP (points, 95% interval), test split

{diffs}

## Frames (supervised, test split)

{frames_table(rows, control)}

## The papers' own choices (test split)

Frozen text tower: the class texts are embedded once by the foundation's text tower (our default for real
CLIP). Papers' switches: KG-CLIP's direct contrasts (`direct_loss_weight` 1), soft in-batch edge targets,
and ASU's per-frame unit selection (docs/MODEL.md).

{arms_table(rows)}

## Development sweep (dev split, seed 0)

{dev_table(dev)}

## Targets

{targets(rows, summary)}

{demo_text(summary)}
"""
    replace_section(report, "papers", body)


def foundation_text(rows: list[dict], demo_summary: dict | None) -> str:
    """Which foundation weights the grid's rows and the demo were trained from, against the current."""
    current = common.foundation_digest()
    counts = Counter(r.get("foundation", "unknown") for r in rows)
    line = ("**Foundation weights** (sha256 prefix) the grid's rows were trained from: "
            + ", ".join(f"`{d}` ({n} rows)" for d, n in counts.most_common()))
    if demo_summary is not None:
        line += f"; the demo checkpoint: `{demo_summary.get('foundation', 'unknown')}`"
    line += f". The current foundation is `{current}`."
    if set(counts) != {current}:
        line += (" Rows from other weights describe the foundation they were trained from, not the current one, "
                 "until the grid is run again (`--only dev`, `--only controls`, `--only grid`).")
    return line


def demo_text(summary: dict | None) -> str:
    """The demo checkpoint's paragraph."""
    if summary is None:
        return "## Demo checkpoint\n\nNot built in this work folder yet (`--only demo`)."
    fresh = summary["fresh"]
    wrong = [f"{a} -> {p}" for a, preds in fresh["predictions"].items() for p in preds if p != a]
    tried = "; ".join(f"lr {c['lr']:g}, {c['steps']} steps, region weight {c.get('region_weight', 0.0):g}: "
                      f"dev {c['dev']['top1']:.1f}%, test {c['test']['top1']:.1f}%" for c in summary["candidates"])
    subset = ""
    if len(summary["candidates"]) < len(common.CANDIDATES):
        subset = (f" (of `demo.CANDIDATES`, only {'these' if len(summary['candidates']) > 1 else 'this one'}, "
                  "the learning rate and steps the development split chose on an earlier foundation, was "
                  "trained: `--candidates`)")
    hub = ""
    if "hub_correction" in summary:
        by_strength = ", ".join(f"{float(b):g}: {v}%" for b, v in summary["hub_dev_selection"].items())
        strength = (f"at strength {summary['hub_correction']:g}" if summary["hub_correction"]
                    else "at strength 0, i.e. without it")
        hub = (f" with the hubness correction of the selection {strength} "
               f"(`ModelConfig.su_hub_correction`, chosen on the development split, where the share per video "
               f"was {by_strength}; {summary['selection_uncorrected']['video']}% on the test split without it)")
    return f"""## Demo checkpoint

`{common.CHECKPOINT_DIR}` ({summary['size_mb']} MB): the full model, every head on, fine-tuned from the
foundation as the grid's runs, only longer. Candidates (chosen by the development split): {tried}{subset}.
Shipped: {summary['steps']} steps at batch {summary['batch_size']} (backbone lr {summary['lr']:g}; the
foundation's region-text loss kept at weight {summary.get('region_weight', 0.0):g}, `demo.REGION_WEIGHT`, and
ASU's unit-selection loss at weight {summary.get('su_loss_weight', 0.0):g}, `demo.SU_LOSS_WEIGHT`;
{summary['train_seconds'] / 60:.0f} min on the shared 2-core CPU). Test split: {summary['test']['top1']:.1f}% top-1
({summary['test'].get('kg_units_top1', float('nan')):.1f}% by its KG-unit scores alone). Through the app's
path (video file -> `Predictor.from_checkpoint(...).predict`), fresh clips rendered with seed
{common.EXAMPLE_SEED}: {fresh['correct']} correct{': wrong ones ' + ', '.join(wrong) if wrong else ''}. Of the
semantic units it selects for correctly classified test clips, {summary['selection']['video']}% belong to the
true class{hub}. The
examples in `{common.EXAMPLES_DIR}` are correctly classified fresh clips, in the fixed teaching order of `demo.py`:
{', '.join(fresh['shipped'])}."""
