"""The "papers" section of docs/TESTBED.md, written from the committed rows alone.

Only rows trained from the current foundation enter a table; rows of other weights are counted
and named, never mixed in.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from experiments.papers import common
from experiments.papers.stats import mean_sd, paired_bootstrap
from experiments.sections import replace_section

# Columns of the accuracy table: (title, setting of the run, key of its per-clip results).
COLUMNS = (("K=2, seen", "K=2", "test/synthetic"), ("K=2, novel by name", "K=2", "test/novel/name"),
           ("K=2, novel by description", "K=2", "test/novel/description"),
           ("supervised, seen", "supervised", "test/synthetic"),
           ("supervised, novel by name", "supervised", "test/novel/name"),
           ("supervised, novel by description", "supervised", "test/novel/description"))
# The exploratory rows of the accuracy table, below the arms.
EXPLORATORY_ARMS = (("+WTI", "name"), ("+MRA/SU/decoder", "name"), ("+KG triplet", "name"),
                    ("full, no KG losses", "name"), ("full KG-CLIP", "description"))
# Exploratory differences (a, b): knowledge as text alone, and the KG on top of it.
EXPLORATORY_PAIRS = (((common.BASELINE, "description"), (common.BASELINE, "name")),
                     (("full KG-CLIP", "name"), (common.BASELINE, "description")),
                     (("full KG-CLIP", "description"), (common.BASELINE, "description")),
                     ((common.SHUFFLED, "name"), (common.BASELINE, "name")))
# A primary comparison's interval must be this narrow (half-width, points): the target.
HALF_WIDTH = {"seen": 3.0, "novel": 4.0}
CONTROLS = ("linear probe", "tiny CNN")


def arm_name(arm: tuple[str, str]) -> str:
    """'full KG-CLIP, names' for ("full KG-CLIP", "name")."""
    variant, text = arm
    return f"{variant}, {text}s"


def per_seed(rows: list[dict], arm: tuple[str, str], setting: str, key: str) -> dict[int, list[int]]:
    """Per-clip correctness by seed of one arm's runs in one setting (the grid's own arms:
    both towers trained, the default switches)."""
    variant, text = arm
    return {r["seed"]: common.unpack(r[key]) for r in rows
            if (r["variant"], r["class_text"], r["setting"]) == (variant, text, setting) and key in r
            and r["train_text"] and not r["papers"]}


def control_seeds(rows: list[dict], variant: str, setting: str, key: str) -> dict[int, list[int]]:
    """Per-clip correctness by seed of one control (linear probe, tiny CNN) in one setting."""
    return {r["seed"]: common.unpack(r[key]) for r in rows
            if r["variant"] == variant and r["setting"] == setting and key in r}


def _acc(correct: list[int]) -> float:
    return 100.0 * sum(correct) / len(correct)


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
    return f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]" + (" *" if lo > 0 or hi < 0 else "")


def zero_shot_table(control: list[dict]) -> str:
    """The untrained foundation by name and by description, on the 24 classes and the novel ones."""
    row = next((r for r in control if r["variant"] == "foundation zero-shot"), None)
    if row is None:
        return "Not measured yet (`--only controls`)."
    out = ["| class text | 24 classes (names seen in pretraining) | 8 novel compositions (zero-shot) |",
           "|---|---:|---:|"]
    for text in ("name", "description"):
        out.append(f"| {text} | {_acc(common.unpack(row[f'test/synthetic/{text}'])):.1f} | "
                   f"{_acc(common.unpack(row[f'test/novel/{text}'])):.1f} |")
    return "\n".join(out)


def accuracy_table(rows: list[dict], control: list[dict]) -> str:
    """Top-1 per arm (the papers' arms, then the exploratory ones and the controls) and column."""
    out = ["| arm | " + " | ".join(c[0] for c in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for arm in (*common.ARMS, *EXPLORATORY_ARMS):
        out.append(f"| {arm_name(arm)} | " + " | ".join(cell(per_seed(rows, arm, s, k)) for _, s, k in COLUMNS) + " |")
    for variant in CONTROLS:
        out.append(f"| *{variant}* | " + " | ".join(cell(control_seeds(control, variant, s, k)) for _, s, k in COLUMNS)
                   + " |")
    return "\n".join(out)


def primary_table(rows: list[dict]) -> str:
    """The comparisons named in advance, with their intervals' half-widths against the target."""
    out = ["| comparison | difference (points, 95% interval) | half-width | target | seeds |",
           "|---|---:|---:|---|---:|"]
    for title, a, b, setting, key in common.PRIMARY:
        first, second = per_seed(rows, a, setting, key), per_seed(rows, b, setting, key)
        result = paired_bootstrap(first, second)
        if result is None:
            out.append(f"| {title} | not run yet | | | 0 |")
            continue
        d, lo, hi = result
        need = HALF_WIDTH["novel" if "novel" in key else "seen"]
        half = (hi - lo) / 2
        seeds = len(set(first) & set(second))
        verdict = ("seeds missing" if seeds < len(common.SEEDS) else "met" if half <= need else "missed")
        out.append(f"| {title} | {diff_cell(first, second)} | {half:.1f} | ≤ {need:g}: {verdict} | {seeds} |")
    return "\n".join(out)


def exploratory_table(rows: list[dict]) -> str:
    """Every other paired difference the report shows: labelled exploratory, not tested in advance."""
    out = ["| a - b | " + " | ".join(c[0] for c in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for a, b in EXPLORATORY_PAIRS:
        out.append(f"| {arm_name(a)} - {arm_name(b)} | " + " | ".join(
            diff_cell(per_seed(rows, a, s, k), per_seed(rows, b, s, k)) for _, s, k in COLUMNS) + " |")
    return "\n".join(out)


def dev_table(dev: list[dict]) -> str:
    """The development sweep: accuracy on the development split's 24 classes by training step."""
    curves = {r["variant"]: {int(s): _acc(common.unpack(c)) for s, c in r["dev/synthetic by step"].items()}
              for r in dev}
    if not curves:
        return "Not run yet (`--only dev`)."
    steps = sorted({s for c in curves.values() for s in c})
    out = ["| steps | " + " | ".join(f"{v}, names" for v in curves) + " |", "|---:|" + "---:|" * len(curves)]
    out += [f"| {s} | " + " | ".join(f"{c[s]:.1f}" if s in c else "-" for c in curves.values()) + " |" for s in steps]
    return "\n".join(out)


def supervised_steps() -> str:
    """The supervised runs' step count, or that the development sweep has not chosen it."""
    steps = common.STEPS["supervised"]
    return f"{steps} steps (the development sweep below chose it)" if steps else "steps not chosen yet (the development sweep below)"


def progress(rows: list[dict]) -> str:
    """How many of the arms' runs are done per setting, and of the supervised primary arms' further
    seeds (the grid continues from the rows)."""
    first = set(common.SEEDS)
    done = Counter(r["setting"] for r in rows if (r["variant"], r["class_text"]) in common.ARMS and r["seed"] in first)
    want = len(common.ARMS) * len(common.SEEDS)
    more = Counter(arm_name((r["variant"], r["class_text"])) for r in rows
                   if r["setting"] == "supervised" and r["seed"] in common.MORE_SEEDS)
    arms = "; ".join(f"{arm_name(arm)}: {more[arm_name(arm)]} of {len(common.MORE_SEEDS)}" for arm in common.ARMS[:3])
    return (", ".join(f"{setting}: {done[setting]} of {want}" for setting in ("K=2", "supervised"))
            + f". Further supervised seeds ({common.MORE_SEEDS[0]}-{common.MORE_SEEDS[-1]}): {arms}")


def foundation_line(kept: int, others: Counter) -> str:
    """Which foundation the tables describe, and the rows of other weights kept out of them."""
    line = f"**Foundation** `{common.foundation_digest()}` (sha256 prefix of `{common.FOUNDATION}`): {kept} rows."
    if others:
        line += (" Rows of other foundations, kept out of every table: "
                 + ", ".join(f"`{d}` ({n} rows)" for d, n in others.most_common()) + ".")
    return line


def write(report: Path) -> None:
    """Rewrite the section from the committed rows (``common.ROWS``)."""
    current = common.foundation_digest()
    paths = (common.RESULTS, common.DEV, common.CONTROLS)
    rows, dev, control = (list(common.read_rows(path, current).values()) for path in paths)
    others = Counter(r.get("foundation", "unknown") for path in paths for r in common.all_rows(path)
                     if r.get("foundation") != current)
    minutes = sum(r.get("seconds", 0) for r in rows + dev) / 60
    body = f"""# The papers' questions, asked fairly (issue 30)

Generated by `{common.COMMAND}` from the committed rows in `{common.ROWS}/` alone (`--only report` rewrites
this section on a fresh clone; the grid resumes from the rows, `--only grid --setting K=2`); do not edit by
hand. {foundation_line(len(rows) + len(dev) + len(control), others)} Training time of the
{len(rows) + len(dev)} runs: {minutes:.0f} min (sum of the runs on a shared 2-core CPU: upper bounds). Done:
{progress(rows)}.

## The foundation, untrained (test split)

The 24 class names appear in the foundation's pretraining captions (`kgclip_core/synth/captions.py`: a
clip of a training action is also captioned with its name), so "by name" on those classes is **not**
zero-shot. The 8 novel compositions never appear in a caption, by name or movement set: they are the
zero-shot test.

{zero_shot_table(control)}

## Set-up

- Every run starts from the foundation and is fine-tuned as the papers do: both towers trainable, AdamW at
  10x the backbone's learning rate for the new modules, weight decay 0.2, betas 0.9/0.98, 10% warmup then
  cosine, gradient norm clipped at 1, batch {common.BATCH}, random crops (no flips). Few-shot K=2:
  {common.STEPS['few-shot']} steps at backbone lr {common.LR['few-shot']:g}; supervised:
  {supervised_steps()} at backbone lr {common.LR['supervised']:g}.
- Arms: **plain CLIP, names** (the papers' baseline: the class name in the prompt templates); **full KG-CLIP,
  names** (every head, the real KG); **full, shuffled KG, names** (every class given another class's
  knowledge, all of it: units, edges and description, from a donor sharing none of its movements, part
  states, motions or objects; among the 8 novel compositions, which share part states such as "arm raise",
  at most one; `class_inputs.shuffled_knowledge`); **plain CLIP, descriptions** (the knowledge as text alone:
  the KG description is the class text). Exploratory: the single heads, the full model without its KG
  losses, the full model with descriptions.
- Data: {common.TRAIN_PER_CLASS} training clips per class (data-set seed 0); test split (seed
  {common.SPLIT_SEEDS['test']}): 20 clips per class of the 24 classes and 60 per class of the 8 novel
  compositions, never trained on, read at 8 frames as the app reads them. K=2 draws 2 clips per class per
  seed, the same for every arm. Seeds: {', '.join(map(str, common.SEEDS))} for every arm; the supervised arms of
  the primary comparisons take more ({common.MORE_SEEDS[0]}-{common.MORE_SEEDS[-1]}, `common.MORE_SEEDS`), added
  because five missed the half-width targets: the stopping rule is the interval's width, never its sign, and
  every seed run is in the tables.
- Each run is evaluated on the 24 classes by its own class text and zero-shot on the novel compositions by
  name and by description; the shuffled arm keeps its shuffled knowledge there too.
- Statistics: mean ± sd over seeds (n seeds); paired differences, over the seeds both arms have, with 95%
  bootstrap intervals resampling seeds and test clips together (`*`: the interval excludes zero).

## Primary comparisons (named in issue 30, before this grid's first run)

{primary_table(rows)}

## Top-1 (%), test split

{accuracy_table(rows, control)}

The shuffled arm's "by description" columns classify each novel composition by another one's
description (its knowledge shuffled as in training): wrong by construction, near 0 when the
description decides. Its "by name" columns are the control's test.

## Exploratory differences (points, 95% interval; not named in advance)

{exploratory_table(rows)}

## Development sweep: supervised steps (development split, seed 0)

{dev_table(dev)}

{demo_text(json.loads(common.DEMO.read_text(encoding="utf-8")) if common.DEMO.is_file() else None)}
"""
    replace_section(report, "papers", body)


def demo_text(summary: dict | None) -> str:
    """The demo checkpoint's paragraph."""
    if summary is None:
        return ("## Demo checkpoint\n\nIts summary is not among the rows yet (`--only demo` writes it; the last one, from "
                "an earlier foundation, is in the history section below).")
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
