"""How far apart the class embeddings stay while training, with the text tower trained or frozen.

One short run per text-tower protocol (plain CLIP, T=2, seed 0, the grid's optimiser) records
the training loss and the mean pairwise cosine of the 24 class embeddings every few steps, so
the report can show whether training the text tower separates the classes or collapses them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from experiments.testbed.data import ClipSet
from experiments.testbed.train import RunSpec, train_model

log = logging.getLogger(__name__)

STEPS, EVERY = 150, 15
RESULT = "collapse.json"


def mean_pairwise_cosine(emb: torch.Tensor) -> float:
    """Mean cosine over the distinct pairs of L2-normalised rows [C, D]."""
    sim = emb.detach() @ emb.detach().T
    c = sim.shape[0]
    return float((sim.sum() - sim.diagonal().sum()) / (c * (c - 1)))


def trace(train: ClipSet, train_text: bool) -> list[dict]:
    """(step, loss, class cosine) every ``EVERY`` steps of one short run."""
    points: list[dict] = []

    def record(step: int, losses: dict[str, torch.Tensor], classes) -> None:
        if step % EVERY == 0 or step == STEPS - 1:
            points.append({"step": step + 1, "loss": round(losses["total"].item(), 3),
                           "class_cosine": round(mean_pairwise_cosine(classes.class_emb), 3)})

    train_model(RunSpec("plain CLIP", seed=0, num_frames=2, steps=STEPS, train_text=train_text), train, on_step=record)
    return points


def build(data: dict[str, ClipSet], work: Path) -> dict:
    """Run both traces and save them to ``work/collapse.json``."""
    torch.set_num_threads(1)
    result = {"trained": trace(data["train"], True), "frozen": trace(data["train"], False)}
    (work / RESULT).write_text(json.dumps(result, indent=1), encoding="utf-8")
    log.info("class-embedding cosine: %s", {k: v[-1] for k, v in result.items()})
    return result
