"""The papers' questions, answered on the foundation: the grid, its controls, the demo, the report.

    python -m experiments.papers                 # everything not yet done, then the report
    python -m experiments.papers --only dev      # the development sweep (supervised steps)
    python -m experiments.papers --only grid --setting K=2   # one setting's runs
    python -m experiments.papers --only report   # rewrite the report from the committed rows
    python -m experiments.papers --only demo-check  # the shipped demo checkpoint measured again

Every finished run is a line of a committed file under ``experiments/papers/rows/`` (per-clip
correctness and predictions included, for the paired statistics); running again skips it, so
the command resumes where it stopped, in a later session or on another machine (commit the
rows). ``--budget-min`` stops starting new runs after that many minutes; the report then shows
the cells done and says which are missing. Runs go in priority order (``run.grid_runs``): the arms
of the papers' questions at K=2, then supervised, the exploratory variants at K=2, further seeds of
the supervised primary arms, and the supervised full model with descriptions.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from experiments.papers import demo, report, run
from experiments.papers.common import CANDIDATES, COMMAND, CONTROLS, DEV, REPORT, RESULTS, ROWS
from experiments.papers.setup import prepare


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run what it asks for (``run``, ``demo``), then write the report."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/kgclip_papers", help="scratch folder: rendered and cached clips")
    parser.add_argument("--only", choices=("dev", "grid", "controls", "demo", "demo-check", "report"),
                        help="demo-check: measure the shipped demo checkpoint again, no training, report untouched")
    parser.add_argument("--candidates", nargs="+", metavar="LR:STEPS[:REGION]",
                        help="the demo's candidates (default: all of demo.CANDIDATES), e.g. 1e-3:2500 "
                             "(region weight: demo.REGION_WEIGHT unless given)")
    parser.add_argument("--budget-min", type=float, default=float("inf"),
                        help="start no new run after this many minutes (resume later)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--setting", choices=tuple(run.SETTING), help="--only grid: only this setting's runs")
    parser.add_argument("--shard", default="0/1", help="I/N: run every N-th pending run from the I-th (N processes "
                        "side by side, one thread each); the report merges the shards")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.ERROR)  # open_clip's chatter
    logging.getLogger("experiments").setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ROWS.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + 60 * args.budget_min
    shard = tuple(int(x) for x in args.shard.split("/"))
    clips = prepare(work) if args.only != "report" else None
    if args.only == "demo-check":
        print(json.dumps(demo.check(clips, work), indent=1))
        return 0
    if args.only in (None, "dev"):
        run.run_list(run.dev_runs(), lambda r: run.dev_curve(r, clips), DEV, deadline, shard)
    if args.only in (None, "demo"):
        candidates = tuple(demo.parse_candidate(c) for c in args.candidates or ()) or CANDIDATES
        demo.build(clips, work, candidates)
    if args.only in (None, "controls"):  # cheap: before the grid's long tail
        run.control_rows(clips, CONTROLS)
    if args.only in (None, "grid"):
        runs = [r for r in run.grid_runs() if args.setting in (None, r.setting.name)]
        run.run_list(runs, lambda r: run.run_one(r, clips, "test"), RESULTS, deadline, shard)
    report.write(REPORT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
