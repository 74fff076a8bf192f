"""What the heatmap comparison's run modules and its report share: the clips, the row files, names.

``run`` (with ``measure``) scores and times the methods and appends rows to the work folder;
``report`` reads them and writes the "heatmaps" section of docs/EXPLAIN.md. Neither imports the
other: what both need is here.
"""

from __future__ import annotations

from pathlib import Path

COMMAND = "python -m experiments.heatmaps"
REPORT = Path("docs/EXPLAIN.md")
# The work folder's row files: pointing and deletion/insertion per (model, split), detection AUC
# per (model, split), timing per model; each row carries the model's weights digest.
RESULTS, DETECTION, TIMING = "results.jsonl", "detection.jsonl", "timing.jsonl"
SPLIT_SEEDS = {"dev": 3000, "test": 4000}
PER_CLASS = 2
LABELS = "synthetic"
RANDOM = "random"  # the baselines' name among the methods: a random peak, a random patch order
CURVE_STEPS = 8  # deletion/insertion points after the start: 1/8 of the patches per step
