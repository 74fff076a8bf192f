"""``kgclip synth``: write a synthetic stick-figure data set."""

from __future__ import annotations

import argparse
import time

from kgclip_core.synth.actions import LABEL_SETS
from kgclip_core.synth.dataset import write_dataset
from kgclip_core.synth.render import SynthConfig


def _run(args: argparse.Namespace) -> int:
    cfg = SynthConfig(size=args.size, num_frames=args.frames, fps=args.fps)
    start = time.perf_counter()
    summary = write_dataset(args.out, per_class=args.per_class, seed=args.seed, classes=args.classes, cfg=cfg,
                            val_fraction=args.val_fraction)
    print(f"{summary.out_dir}: {len(summary.classes)} classes ({summary.label_set}), "
          f"{summary.num_train} train + {summary.num_val} val clips, {args.frames} frames "
          f"{args.size}x{args.size} at {args.fps} fps ({summary.codec}), {time.perf_counter() - start:.1f} s")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``synth`` sub-command on the ``kgclip`` parser."""
    defaults = SynthConfig()
    p = subparsers.add_parser("synth", help="write a synthetic stick-figure action data set with ground truth")
    p.add_argument("--out", required=True, help="output folder (videos/, train.txt, val.txt, labels.csv, ...)")
    p.add_argument("--per-class", type=int, required=True, help="clips per class")
    p.add_argument("--seed", type=int, default=0, help="data-set seed (same seed, same clips)")
    p.add_argument("--classes", choices=sorted(LABEL_SETS), default="synthetic", help="label set to render")
    p.add_argument("--frames", type=int, default=defaults.num_frames, help="frames per clip")
    p.add_argument("--size", type=int, default=defaults.size, help="frame width and height in pixels (even)")
    p.add_argument("--fps", type=int, default=defaults.fps, help="frame rate of the written videos")
    p.add_argument("--val-fraction", type=float, default=0.25, help="share of each class's clips put in val.txt")
    p.set_defaults(func=_run)
    return p
