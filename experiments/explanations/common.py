"""What the explanations experiment's run modules and its report share: names, seeds, row files.

``detector`` trains each shipped model's concept detector and calibrates it on the development
split; ``run`` measures a split and appends rows; ``report`` reads the rows and writes the
"explanations" section of docs/EXPLAIN.md. The rows live in this package (``rows/``, committed),
so the report regenerates from a clone and a split measured once is never measured again.
"""

from __future__ import annotations

from pathlib import Path

from kgclip_core.predictor import Predictor
from kgclip_core.synth.foundation import foundation_predictor

COMMAND = "python -m experiments.explanations"
REPORT = Path("docs/EXPLAIN.md")
SECTION = "explanations"
ROWS = Path(__file__).resolve().parent / "rows"
CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
MODELS = {"demo": CHECKPOINTS / "synthetic", "foundation": CHECKPOINTS / "foundation"}
LABELS = "synthetic"
# Fresh clips per split and population; the detectors train on other seeds. The own classes'
# seeds are the heatmap comparison's, the novel compositions' their own.
SEEDS = {("train", "own"): 1000, ("train", "random"): 1500,
         ("dev", "own"): 3000, ("dev", "novel"): 3100, ("test", "own"): 4000, ("test", "novel"): 4100}
PER_CLASS = {"train": 12, "own": 4, "novel": 12}  # training clips per class; evaluation clips per class
RANDOM_COMPOSITIONS = 1200  # training clips of random compositions (never a novel one)
REAL = "real"  # the population of the real clips in ../shared/clips (test split only)
# Row files: the detectors' development-split fit, and one row per clip and split.
DETECTORS, CLIPS = "detectors.jsonl", "clips.jsonl"


def load_model(name: str) -> Predictor:
    """A shipped model as the app runs it (its concept detector included once trained)."""
    if name == "demo":
        return Predictor.from_checkpoint(MODELS[name], device="cpu")
    return foundation_predictor(MODELS[name] / "open_clip_model.safetensors", device="cpu")
