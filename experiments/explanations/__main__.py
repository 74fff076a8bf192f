"""Command line of the explanations experiment (see the package docstring)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from experiments.explanations import detector, first_map, report, run
from experiments.explanations.common import COMMAND, MODELS


def main(argv: list[str] | None = None) -> int:
    """Train the detectors, measure the development then the test split (each once: a split with
    rows is not measured again), then the first map shown on each (once per rule), and write the
    report."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kgclip_explanations"), help="scratch folder: clips")
    parser.add_argument("--only", choices=("detector", "dev", "test", "maps-dev", "maps-test", "report"),
                        help="one stage; maps-dev and maps-test measure the first map shown, under today's rule")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.ERROR)  # open_clip's chatter
    logging.getLogger("experiments").setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    if args.only in (None, "detector"):
        for name in args.models:
            detector.train(name, args.work)
    for split in ("dev", "test"):
        if args.only in (None, split):
            for name in args.models:
                run.measure(name, split, args.work)
    for split in ("dev", "test"):
        if args.only in (None, f"maps-{split}"):
            for name in args.models:
                first_map.measure(name, split, args.work)
    report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
