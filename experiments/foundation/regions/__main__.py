"""Does a region-text signal in pretraining make the foundation's maps point at the named part?

    python -m experiments.foundation.regions              # continue, measure, print the table
    python -m experiments.foundation.regions --steps 400  # a shorter run
    python -m experiments.foundation.regions --seed 2     # another corpus and batch order
    python -m experiments.foundation.regions --report     # the tables over the seeds done, from saved results

See :mod:`experiments.foundation.regions` for the design; the runs and measurements are
:mod:`.run`, the tables :mod:`.report`.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from experiments.foundation.regions import report, run
from experiments.foundation.regions.run import FIRST_SEED, STAGE_ONE


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, continue and measure (unless ``--report``), print the tables."""
    p = argparse.ArgumentParser(prog="python -m experiments.foundation.regions",
                                description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/kgclip_regions"), help="scratch folder (resumable)")
    p.add_argument("--steps", type=int, default=1000, help="continued pretraining steps of each run")
    p.add_argument("--corpus-size", type=int, default=3000, help="captioned clips of the continued pretraining")
    p.add_argument("--region-weight", type=float, default=1.0, help="the region-text loss's weight")
    p.add_argument("--seed", type=int, default=FIRST_SEED, help=f"corpus and batch-order seed (>= {FIRST_SEED})")
    p.add_argument("--init-from", type=Path, default=STAGE_ONE,
                   help="the first-stage foundation's weights (experiments.foundation's seed 0)")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--report", action="store_true", help="print the tables over the seeds done, train nothing")
    args = p.parse_args(argv)
    if args.seed < FIRST_SEED:
        p.error(f"--seed must be at least {FIRST_SEED}: seed 0's corpus is the one the foundation was pretrained on")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.ERROR)  # open_clip's chatter
    logging.getLogger("experiments").setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.report:
        return report.print_seeds(args.work, args.steps)
    start = time.perf_counter()
    run.measure(args.work, args.init_from, args.steps, args.corpus_size, args.region_weight, args.seed)
    print(f"{args.steps} more steps on {args.corpus_size} new captioned clips (corpus seed {args.seed}), "
          f"{(time.perf_counter() - start) / 60:.0f} min\n")
    report.print_seed(args.work, args.steps, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
