"""The region-stage probe's tables, printed from the results the run saved: pointing by method
and by body part, and zero-shot accuracy, over one or more corpus seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from experiments.foundation.common import PER_CLASS
from experiments.foundation.regions.common import METHODS, result_file, result_files


def print_seed(work: Path, steps: int, seed: int) -> None:
    """Print the tables of one corpus seed's results."""
    print(table([json.loads(result_file(work, steps, seed).read_text())]))


def print_seeds(work: Path, steps: int) -> int:
    """Print the tables over every seed measured in ``work`` at ``steps``; 1 when there is none."""
    files = result_files(work, steps)
    if not files:
        print(f"No results of {steps} steps in {work}: run without --report first.")
        return 1
    print(f"Seeds {', '.join(f.stem.rsplit('seed', 1)[1] for f in files)}, {steps} steps each:\n")
    print(table([json.loads(f.read_text()) for f in files]))
    return 0


def _cell(values: list[float]) -> str:
    """One value, or the mean over seeds with each seed's value."""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ({', '.join(f'{v:.1f}' for v in values)})"


def table(runs: list[dict[str, dict]]) -> str:
    """The markdown tables over one or more seeds' results: pointing by method, by part (``cosine``
    / ``sclip``), zero-shot accuracy. With several seeds a cell is the mean, then each seed's value."""
    names = list(runs[0])
    first = runs[0][names[0]]["pointing"]
    get = lambda name, path: _cell([_dig(r[name], path) for r in runs])  # noqa: E731
    lines = [f"Pointing, patch (%), test split ({first['pairs']} (frame, unit) pairs; random peak {first['random']}%"
             f"; {len(runs)} seed(s)):", "", "| method | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines += [f"| {m} | " + " | ".join(get(n, ("pointing", "methods", m)) for n in names) + " |" for m in METHODS]
    lines += ["", "By body part, `cosine` / `sclip` (%):", "",
              "| part | pairs | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for part, row in first["parts"].items():
        cells = [f"{get(n, ('pointing', 'parts', part, 'cosine'))} / {get(n, ('pointing', 'parts', part, 'sclip'))}"
                 for n in names]
        lines.append(f"| {part} | {row['pairs']} | " + " | ".join(cells) + " |")
    lines += ["", "Zero-shot top-1 (%), the foundation report's test clips:", "",
              "| label set, class text | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label_set in PER_CLASS:
        for mode in ("name+units", "description+units", "units"):
            lines.append(f"| {label_set}, {mode} | "
                         + " | ".join(get(n, ("zero_shot", label_set, mode)) for n in names) + " |")
    return "\n".join(lines)


def _dig(tree: dict, path: tuple[str, ...]) -> float:
    for key in path:
        tree = tree[key]
    return tree
