"""Compare the heatmap methods on the synthetic ground truth, time them, write docs/EXPLAIN.md.

    python -m experiments.heatmaps                            # measure, time, report
    python -m experiments.heatmaps --checkpoint runs/demo     # another demo checkpoint
    python -m experiments.heatmaps --only report              # rewrite the section from saved results

The measuring and timing is :mod:`experiments.heatmaps.run` (rows kept in the work folder under
each model's weights hash, so a rerun skips what is done); the section is
:mod:`experiments.heatmaps.report`.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from experiments.heatmaps import report, run
from experiments.heatmaps.common import COMMAND, REPORT, SPLIT_SEEDS

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, measure and time what it asks for, then write the report."""
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/kgclip_heatmaps"), help="scratch folder (resumable)")
    p.add_argument("--foundation", type=Path, default=Path("checkpoints/foundation/open_clip_model.safetensors"))
    p.add_argument("--checkpoint", type=Path, default=Path("checkpoints/synthetic"))
    p.add_argument("--only", choices=["measure", "timing", "report"], default=None)
    p.add_argument("--splits", nargs="+", choices=list(SPLIT_SEEDS), default=list(SPLIT_SEEDS),
                   help="measure these splits only (choose on dev before the test split is read)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)  # a shared machine: one core, and timings comparable between runs
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    models = run.load_models(args.foundation, args.checkpoint)
    for name, (predictor, digest) in models.items():
        if args.only in (None, "measure"):
            for split in args.splits:
                run.measure(args.work, name, predictor, digest, split)
                run.detect(args.work, name, predictor, digest, split)
        if args.only in (None, "timing"):
            run.timing(args.work, name, predictor, digest)
    if args.only in (None, "report"):
        report.write(args.work, {name: digest for name, (_, digest) in models.items()},
                     {"foundation": str(args.foundation), "demo checkpoint": str(args.checkpoint)},
                     {name: predictor.cfg.heatmap_method for name, (predictor, _) in models.items()})
        print(f"wrote {REPORT}")
    log.info("done in %.0f s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
