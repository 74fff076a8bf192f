"""Pretrain the synthetic world's CLIP on several seeds, measure it zero-shot, write the report.

    python -m experiments.foundation                 # pretrain, evaluate, report, ship seed 0
    python -m experiments.foundation --only report   # rewrite the table from saved results

Each seed is pretrained in two stages, as RegionCLIP continues CLIP's pretraining:

- ``clip``: CLIP's contrastive loss from random weights (``seed{N}/``);
- ``regions``: continued with the region-text loss added (``seed{N}_regions/``), on the next
  seed's corpus, new to this model. ``python -m experiments.foundation.regions`` measured what
  it does to the maps (docs/EXPLAIN.md); the shipped weights are seed 0's after this stage.

Every seed's weights, and every (seed, split, label set) result, are kept in the work folder;
running again skips what is done and resumes an interrupted pretraining, so the command is
resumable. The evaluation clips are fresh (their own data-set seeds, never in the corpus):
a development split, used to choose the pretraining settings, and a test split, reported.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
from pathlib import Path

import torch

from kgclip_core.synth.pretrain import PretrainConfig
from experiments.foundation import report, run
from experiments.foundation.common import (COMMAND, REPORT, SEEDS, SHIPPED_DIR, SHIPPED_SEED, SHIPPED_STAGE, STAGES,
                                           WORK, stage_config)

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, pretrain and evaluate what it asks for, write the report, ship."""
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=WORK, help="scratch folder (resumable)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--steps", type=int, default=PretrainConfig().steps)
    p.add_argument("--only", choices=["pretrain", "eval", "report", "ship"], default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    seeds = tuple(args.seeds)
    args.work.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for stage in STAGES:
            if args.only in (None, "pretrain"):
                run.pretrain_seed(args.work, seed, stage, stage_config(args.work, seed, stage, args.steps))
            if args.only in (None, "eval"):
                run.evaluate_seed(args.work, seed, stage)
    if args.only in (None, "report"):
        report.write(args.work, seeds, PretrainConfig(steps=args.steps))
        print(f"wrote {REPORT}")
    if args.only in (None, "ship") and SHIPPED_SEED in seeds:
        run.ship(args.work, SHIPPED_SEED)
        print(f"shipped seed {SHIPPED_SEED} after its {SHIPPED_STAGE!r} stage to {SHIPPED_DIR}")
    log.info("machine: %s", platform.platform())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
