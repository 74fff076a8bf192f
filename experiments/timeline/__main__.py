"""Command line of the timeline experiment (see the package docstring)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from experiments.timeline import report, run
from experiments.timeline.common import COMMAND


def main(argv: list[str] | None = None) -> int:
    """Measure every setting (each once: a setting with rows is not measured again), then write the report."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kgclip_timeline"), help="scratch folder: videos")
    parser.add_argument("--only", choices=("run", "report"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.ERROR)  # open_clip's chatter
    logging.getLogger("experiments").setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    if args.only in (None, "run"):
        run.measure(args.work)
    report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
