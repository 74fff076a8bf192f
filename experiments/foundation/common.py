"""What the foundation's run and its report share: seeds, stages, evaluation clips, where rows go.

``run`` pretrains, evaluates and ships, appending rows to the work folder; ``report`` reads them
(and each stage's summary) and writes the "foundation" section of docs/TESTBED.md. Neither imports
the other: what both need is here.
"""

from __future__ import annotations

from pathlib import Path

from kgclip_core.synth.pretrain import SUMMARY_FILE, WEIGHTS_FILE, PretrainConfig

SEEDS = (0, 1, 2)
SHIPPED_SEED = 0
STAGES = ("clip", "regions")
SHIPPED_STAGE = "regions"
SPLIT_SEEDS = {"dev": 1000, "test": 2000}  # data-set seeds of the evaluation clips
PER_CLASS = {"synthetic": 20, "synthetic_novel": 30}
SHIPPED_DIR = Path("checkpoints/foundation")
REPORT = Path("docs/TESTBED.md")
COMMAND = "python -m experiments.foundation"
WORK = Path("/tmp/kgclip_foundation")  # the default scratch folder
RESULTS = "results.jsonl"  # the work folder's rows: zero-shot accuracy per (seed, stage, split, label set)


def region_stage_config(init_from: Path, seed: int, steps: int = 2000, corpus_size: int = 3000,
                        region_weight: float = 1.0) -> PretrainConfig:
    """The continued pretraining with the region-text loss: its settings came from a 400-step probe
    scored on the development clips of the heatmap comparison and of this report, its length from
    the development split's pointing (1,000 steps: 81.7%, 2,000: 85.6%; docs/EXPLAIN.md)."""
    return PretrainConfig(seed=seed, corpus_size=corpus_size, steps=steps, lr=5e-4, warmup_fraction=0.02,
                          region_weight=region_weight, init_from=str(init_from))


def stage_dir(work: Path, seed: int, stage: str) -> Path:
    """The folder of one seed's weights after ``stage``."""
    return work / (f"seed{seed}" if stage == "clip" else f"seed{seed}_{stage}")


def stage_config(work: Path, seed: int, stage: str, steps: int) -> PretrainConfig:
    """The pretraining of one seed's ``stage``; ``steps`` is the first stage's."""
    if stage == "clip":
        return PretrainConfig(seed=seed, steps=steps)
    # The next seed's corpus: this model has not seen it (the first stage rendered seed ``seed``'s).
    return region_stage_config(stage_dir(work, seed, "clip") / WEIGHTS_FILE, seed + 1)


def summary_name(stage: str) -> str:
    """The shipped name of a stage's summary: ``pretrain.json`` for the first, ``pretrain_regions.json`` ..."""
    return SUMMARY_FILE if stage == STAGES[0] else SUMMARY_FILE.replace(".json", f"_{stage}.json")
