"""Write the "explanations" section of docs/EXPLAIN.md from the committed rows alone."""

from __future__ import annotations

import numpy as np

from kgclip_core.explain.maps import FIRST_MAP_RULE
from experiments import jsonl
from experiments.explanations.common import CLIPS, COMMAND, DETECTORS, EVAL, FIRST_MAPS, REAL, REPORT, ROWS, SECTION
from experiments.explanations.first_map import RULES, chosen
from experiments.explanations.stats import auroc, calibration_error, clip_bootstrap
from experiments.sections import replace_section

MODELS = ("demo", "foundation")
TARGETS = {"precision": ">= 90%", "recall": ">= 85%", "absent": "<= 10%", "ece": "<= 0.05"}


def _pairs(rows: list[dict]) -> list[list[list]]:
    """Per clip, its concept rows [text, type, probability, marked, shown]."""
    return [r["concepts"] for r in rows if "concepts" in r]


def _rate(groups: list[list[list]], kind: str) -> float:
    pairs = [p for g in groups for p in g]
    marked = np.array([p[3] for p in pairs], bool)
    shown = np.array([p[4] for p in pairs], bool)
    if kind == "precision":
        return 100 * (marked & shown).sum() / max(marked.sum(), 1)
    if kind == "recall":
        return 100 * (marked & shown).sum() / max(shown.sum(), 1)
    if kind == "absent":
        return 100 * (marked & ~shown).sum() / max((~shown).sum(), 1)
    return calibration_error([p[2] for p in pairs], shown)


def _cell(groups: list, measure, digits: int = 1) -> str:
    if not groups:
        return "-"
    value, lo, hi = clip_bootstrap(groups, measure)
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _presence(rows: list[dict]) -> list[str]:
    lines = ["| model | split | clips | ✓ precision (%) | recall (%) | absent marked ✓ (%) | calibration error |",
             "|---|---|---:|---:|---:|---:|---:|",
             f"| target | test | | {TARGETS['precision']} | {TARGETS['recall']} | {TARGETS['absent']} | {TARGETS['ece']} |"]
    for model in MODELS:
        for split in ("dev", "test"):
            for population in ("own", "novel"):
                groups = _pairs([r for r in rows if (r["model"], r["split"], r["population"]) == (model, split, population)])
                if groups:
                    lines.append(f"| {model} | {split}, {_population(population)} | {len(groups)} | "
                                 + " | ".join(_cell(groups, lambda g, k=k: _rate(g, k), 3 if k == "ece" else 1)
                                              for k in ("precision", "recall", "absent", "ece")) + " |")
    return lines


def _split(split: str, population: str) -> str:
    seed, per_class = EVAL[(split, population)]
    return f"{per_class} per class, seed {seed}"


def _population(population: str) -> str:
    return {"own": "its 24 classes", "novel": "8 novel compositions", REAL: "real clips"}[population]


def _contrast(rows: list[dict]) -> list[str]:
    lines = ["| model | split | clips (right, runner-up shares a movement) | every telling concept marked right (%) |",
             "|---|---|---:|---:|", "| target | test | | >= 90% |"]
    for model in MODELS:
        for split in ("dev", "test"):
            chosen = [r for r in rows if (r["model"], r["split"], r["population"]) == (model, split, "own")
                      and r.get("correct") and r["contrast"]["shares_movement"]]
            right = [all(t[2] == t[3] for t in r["contrast"]["telling"]) for r in chosen]
            if chosen:
                lines.append(f"| {model} | {split} | {len(chosen)} | "
                             f"{_cell(right, lambda g: 100 * float(np.mean(g)))} |")
    return lines


def _first_map(maps: list[dict]) -> list[str]:
    lines = ["| model | split | frames where a part moves | peak on a moving part (%) | clips | hiding the map's top "
             "10% lowers the concept more than a random 10% (%) | its drop / occlusion's top 10% | class logit drop: "
             "map / random |", "|---|---|---:|---:|---:|---:|---:|---:|",
             "| target | test | | >= 85% | | >= 80% | >= 0.5 | |"]
    for model in MODELS:
        for split in ("dev", "test"):
            shown = [r["first_map"] for r in maps if (r["model"], r["split"]) == (model, split) and "first_map" in r]
            if not shown:
                continue
            hits = [h for m in shown for h in m["hits"]]
            beats = [m["drop_map"] > m["drop_random"] for m in shown]
            ratio = np.mean([m["drop_map"] for m in shown]) / max(np.mean([m["drop_occlusion"] for m in shown]), 1e-9)
            pointing = _cell([m["hits"] for m in shown], lambda g: 100 * float(np.mean([h for x in g for h in x])))
            lines.append(f"| {model} | {split} | {len(hits)} | {pointing} | {len(shown)} | "
                         f"{_cell(beats, lambda g: 100 * float(np.mean(g)))} | {ratio:.2f} | "
                         f"{np.mean([m['class_drop_map'] for m in shown]):.3f} / "
                         f"{np.mean([m['class_drop_random'] for m in shown]):.3f} |")
    return lines


def _rules(maps: list[dict]) -> list[str]:
    """On the development split, the share of frames where the first map would peak on a moving
    part under each rule compared, with the concept types each shows first."""
    lines = ["| rule | model | peak on a moving part (%) | clips whose first map is a movement / a part state / "
             "a body part / another type |", "|---|---|---:|---|"]
    for rule in RULES:
        for model in MODELS:
            rows = [r for r in maps if (r["model"], r["split"]) == (model, "dev")]
            picked = [c for c in (chosen(r, rule) for r in rows) if c is not None]
            if not picked:
                continue
            hits = [h for c in picked for h in c["hits"]]
            kinds = [sum(c["type"] == t for c in picked) for t in ("movement", "part_state", "body_part")]
            lines.append(f"| {rule}{' (shipped)' if rule == FIRST_MAP_RULE else ''} | {model} | "
                         f"{100 * np.mean(hits):.1f} | {' / '.join(map(str, kinds))} / {len(picked) - sum(kinds)} |")
    return lines


def _unsure(rows: list[dict]) -> list[str]:
    lines = ["| model | split | own clips against | AUROC of the misfit (1 - fit) | flagged \"not sure\": own / other (%) |",
             "|---|---|---|---:|---:|", "| target (demo) | test | real clips / novel compositions | >= 0.95 / >= 0.80 | |"]
    for model in MODELS:
        for split in ("dev", "test"):
            own = [r for r in rows if (r["model"], r["split"], r["population"]) == (model, split, "own")]
            for other in ("novel", REAL):
                them = [r for r in rows if (r["model"], r["split"], r["population"]) == (model, split, other)]
                if own and them:
                    area = auroc([1 - r["fit"] for r in own + them], [False] * len(own) + [True] * len(them))
                    lines.append(f"| {model} | {split} | {_population(other)} ({len(them)}) | {area:.3f} | "
                                 f"{100 * np.mean([r['unsure'] for r in own]):.1f} / "
                                 f"{100 * np.mean([r['unsure'] for r in them]):.1f} |")
    return lines


def _cost(rows: list[dict]) -> list[str]:
    lines = ["| model | clips | a prediction (ms, best of 5) | what the marks, the contrast and its maps add (ms) | "
             "added share |", "|---|---:|---:|---:|---:|", "| target | | | | <= +15% |"]
    for model in MODELS:
        timed = [r["timing"] for r in rows if r["model"] == model and "timing" in r]
        if timed:
            whole = np.median([t["predict_ms"] for t in timed])
            added = np.median([t["added_ms"] for t in timed])
            lines.append(f"| {model} | {len(timed)} | {whole:.1f} | {added:.1f} | "
                         f"+{100 * added / max(whole - added, 1e-9):.1f}% |")
    return lines


def _detectors(rows: list[dict]) -> list[str]:
    lines = ["| model | weights | training clips (frames) | concepts | dev AUROC | dev calibration error | "
             "\"not sure\" below | dev AUROC of the misfit, own against novel |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | `{r['weights']}` | {r['train_clips']} ({r['train_frames']}) | {r['concepts']} | "
                     f"{r['dev_auroc']:.3f} | {r['dev_ece']:.3f} | {r['unsure_below']:.3f} | "
                     f"{r['dev_unsure_auroc']:.3f} |")
    return lines


def text(clips: list[dict], detectors: list[dict], maps: list[dict]) -> str:
    """The section's Markdown from the rows."""
    latest = {r["model"]: r for r in detectors}  # the detector each model ships (the last trained)
    # Rows of an earlier detector describe a model that no longer ships, and first maps of another
    # rule a map the app no longer shows first: never mixed in.
    rows = [r for r in clips if r["model"] in latest and r["detector"] == latest[r["model"]]["detector"]]
    maps = [r for r in maps if r["model"] in latest and r["detector"] == latest[r["model"]]["detector"]
            and r["rule"] == FIRST_MAP_RULE]
    return "\n".join([
        "## Explanations against ground truth",
        "",
        f"Generated by `{COMMAND}` from the rows committed in `experiments/explanations/rows/` "
        f"(`--only report` rewrites it from them). Fresh clips, none seen in training: the 24 classes "
        f"({_split('dev', 'own')} dev, {_split('test', 'own')} test), the 8 novel compositions "
        f"({_split('dev', 'novel')} dev, {_split('test', 'novel')} test), and on "
        "the test split the 33 real clips of `../shared/clips`. Every choice (the detectors' features and "
        "calibration, the "
        "\"not sure\" bar) was made on the development split; the test split was measured once, at the end. "
        "Intervals: 95%, bootstrap over clips.",
        "",
        "What each number measures. The ✓ marks come from each model's concept detector, trained for exactly "
        "this (presence, on other clips of the same world): precision, recall and calibration measure that "
        "training target on held-out clips. The first map's pointing is scored on the generator's boxes that the "
        "foundation's region-text loss trained on: it shows that training worked. Hiding the map's region, the "
        "contrast and \"not sure\" against real clips measure behaviour: no loss trained for them.",
        "",
        "### The concept detectors",
        "",
        *_detectors(list(latest.values())),
        "",
        "### ✓ against ground truth (every concept of the top 3 classes)",
        "",
        *_presence(rows),
        "",
        "### Why X and not Y",
        "",
        *_contrast(rows),
        "",
        "### The first map shown",
        "",
        f"Rule: {FIRST_MAP_RULE} (`explain.maps.concept_rank`); its test split is its own, "
        f"{_split('maps-test', 'own')} (the rule was changed after the test split above was read).",
        "",
        *_first_map(maps),
        "",
        "The rules compared on the development split (`first_map.RULES`; the drops need each rule's own "
        "measurement, so only the pointing is compared):",
        "",
        *_rules(maps),
        "",
        "### Not sure",
        "",
        *_unsure(rows),
        "",
        "### Cost",
        "",
        *_cost(rows),
    ])


def write() -> None:
    """Rewrite the section from the committed rows."""
    replace_section(REPORT, SECTION, text(jsonl.read(ROWS / CLIPS), jsonl.read(ROWS / DETECTORS),
                                          jsonl.read(ROWS / FIRST_MAPS)))
