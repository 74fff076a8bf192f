"""``kgclip synth`` and ``kgclip pretrain``: write a synthetic data set; pretrain its tiny CLIP."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kgclip_core.outputs import check_new_folder
from kgclip_core.synth.actions import LABEL_SETS
from kgclip_core.synth.dataset import write_dataset
from kgclip_core.synth.render import SynthConfig


def _run(args: argparse.Namespace) -> int:
    check_new_folder("--out", Path(args.out))
    cfg = SynthConfig(size=args.size, num_frames=args.frames, fps=args.fps)
    start = time.perf_counter()
    summary = write_dataset(args.out, per_class=args.per_class, seed=args.seed, classes=args.classes, cfg=cfg,
                            val_fraction=args.val_fraction)
    print(f"{summary.out_dir}: {len(summary.classes)} classes ({summary.label_set}), "
          f"{summary.num_train} train + {summary.num_val} val clips, {args.frames} frames "
          f"{args.size}x{args.size} at {args.fps} fps ({summary.codec}), {time.perf_counter() - start:.1f} s")
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from kgclip_core.synth.pretrain import STATE_FILE, PretrainConfig, Pretrainer

    cfg = PretrainConfig(seed=args.seed, corpus_size=args.corpus_size, num_frames=args.frames,
                         train_frames=min(args.train_frames, args.frames), render_size=args.render_size,
                         steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         region_weight=args.region_weight, init_from=args.init_from)
    trainer = Pretrainer(cfg, args.out)
    if args.resume:
        trainer.resume(args.resume if args.resume != "auto" else Path(args.out) / STATE_FILE)
    result = trainer.run()
    print(f"{result.weights}: {cfg.model} pretrained {cfg.steps} steps on {cfg.corpus_size} captioned clips "
          f"in {result.seconds / 60:.1f} min (final loss {result.final_loss:.3f}, caption cosine "
          f"{result.text_cosine:.3f}). Use it with --model {cfg.model} --pretrained {result.weights}")
    return 0


def _add_pretrain(subparsers: argparse._SubParsersAction) -> None:
    from kgclip_core.synth.pretrain import PretrainConfig

    d = PretrainConfig()
    p = subparsers.add_parser("pretrain", help="pretrain the synthetic world's tiny CLIP on a caption corpus")
    p.add_argument("--out", required=True, help="output folder (open_clip_model.safetensors, pretrain.json, log)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the corpus and the initial weights")
    p.add_argument("--corpus-size", type=int, default=d.corpus_size, help="captioned clips rendered for training")
    p.add_argument("--steps", type=int, default=d.steps, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per step")
    p.add_argument("--frames", type=int, default=d.num_frames, help="frames rendered per corpus clip (1-32)")
    p.add_argument("--train-frames", type=int, default=d.train_frames, help="frames per clip in a step")
    p.add_argument("--render-size", type=int, default=d.render_size, help="render size before the resize to 64 px")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate of the image tower")
    p.add_argument("--region-weight", type=float, default=d.region_weight,
                   help="weight of the region-text loss (patch tokens over a moving part vs its movement's "
                        "phrase; 0-10, 0 = CLIP's loss alone)")
    p.add_argument("--init-from", default=None, metavar="WEIGHTS",
                   help="continue pretraining from these open_clip weights (.safetensors) instead of a random start")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue an interrupted run (from OUT/pretrain_state.pt, or the path given)")
    p.set_defaults(func=_pretrain)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``synth`` and ``pretrain`` sub-commands on the ``kgclip`` parser."""
    _add_pretrain(subparsers)
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
