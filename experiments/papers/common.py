"""What the papers' run modules and its report share: the grid's definition and where its rows go.

The run modules (``run``, ``demo``) train and write rows into the work folder; ``report`` reads
them and writes the "papers" section of docs/TESTBED.md. Neither imports the other: what both
need is here.
"""

from __future__ import annotations

import functools
from pathlib import Path

from experiments import jsonl
from experiments.weights import digest

REPORT = Path("docs/TESTBED.md")
COMMAND = "python -m experiments.papers"
# The work folder's row files: the grid's runs, the development sweep's, the controls', and the
# demo's summary (one JSON object).
RESULTS, DEV, CONTROLS, DEMO = "results.jsonl", "dev.jsonl", "controls.jsonl", "demo.json"

FOUNDATION = Path("checkpoints/foundation/open_clip_model.safetensors")
BACKBONE = "kgclip-synth"
SPLIT_SEEDS = {"dev": 1000, "test": 2000}
TRAIN_PER_CLASS = 40
SEEDS = (0, 1, 2, 3, 4)
BATCH = 16
# Chosen on the development split (docs/TESTBED.md, "papers" section, Set-up) among DEV_LRS.
LR = 1e-4
DEV_LRS = (1e-4, 3e-4, 1e-3)
STEPS = {"supervised": 300, "few-shot": 100}

# The ablation variants (ModelConfig overrides on top of the plain CLIP) and the two learned
# controls: the full model without its KG losses (the triplet encoder's parameters, trained
# through the classification loss only) and the full model with a shuffled KG.
FULL = {"use_mra": True, "use_su": True, "use_decoder": True, "use_wti": True, "use_triplet": True}
VARIANTS: dict[str, dict] = {
    "plain CLIP": {},
    "+WTI": {"use_wti": True},
    "+MRA/SU/decoder": {"use_mra": True, "use_su": True, "use_decoder": True},
    "+KG triplet": {"use_triplet": True},
    "full KG-CLIP": FULL,
    "full, no KG losses": {**FULL, "triplet_loss_weight": 0.0},
    "full, shuffled KG": FULL,
}
SHUFFLED = "full, shuffled KG"

# The demo checkpoint (``demo.py``) and its example clips.
CHECKPOINT_DIR = Path("checkpoints/synthetic")
EXAMPLES_DIR = Path("assets/examples")
EXAMPLE_SEED = 7  # no training or evaluation set uses it: these clips are new to the model
# The foundation's region-text loss is kept in fine-tuning at this weight (RunSpec.region_weight):
# on class labels alone the patch tokens forgot where the parts are (patch-cosine pointing fell
# from 82% to 35% on the development split, docs/EXPLAIN.md).
REGION_WEIGHT = 1.0
# (backbone lr, steps, region weight) tried; the one best on the development split ships.
CANDIDATES = tuple((lr, steps, REGION_WEIGHT) for lr, steps in ((1e-4, 800), (3e-4, 1000), (1e-3, 1000), (1e-3, 2500)))


@functools.cache
def foundation_digest() -> str:
    """A hash of the foundation's weights: rows record it, so a new foundation's runs are not
    mistaken for done."""
    return digest(FOUNDATION)


def read_rows(path: Path, foundation: str | None = None) -> dict[str, dict]:
    """Finished rows by key (the last of a key wins), from ``path`` and its shards
    (``NAME.shard*.jsonl``, see --shard); with ``foundation``, only rows trained from those weights."""
    rows = {}
    for part in [path, *sorted(path.parent.glob(f"{path.stem}.shard*.jsonl"))]:
        rows.update((r["key"], r) for r in jsonl.read(part) if foundation is None or r.get("foundation") == foundation)
    return rows
