"""``kgclip train`` and ``kgclip eval``: sub-commands registered on the ``kgclip`` command.

``kgclip train --config configs/<name>.yaml [--opts key=value ...]`` runs as one process, or
under ``torchrun --nproc_per_node N -m kgclip_core.cli train ...`` as N (per node).
"""

from __future__ import annotations

import argparse
import json
import os


def _train(args: argparse.Namespace) -> int:
    from kgclip_core.training.config import load_config
    from kgclip_core.training.trainer import train

    # The whole config is checked (unknown keys included) before any data or model is touched.
    cfg = load_config(args.config, args.opts)
    result = train(cfg)
    if _is_main():
        best = "n/a" if result.best_metric is None else f"{100 * result.best_metric:.2f}%"
        print(f"Finished {result.steps} steps; best top-1 {best}. Outputs in {result.output_dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from kgclip_core.training.evaluate import EvalOptions, evaluate_checkpoint

    opts = EvalOptions(
        video_root=args.video_root, labels=args.labels or "", clips=args.clips, crops=args.crops,
        batch_size=args.batch_size, num_workers=args.num_workers, device=args.device, out_dir=args.out or "",
    )
    result = evaluate_checkpoint(args.checkpoint, args.list, opts)
    if _is_main():
        if args.json:
            print(json.dumps({**result.summary(), "per_class": result.per_class}, indent=1))
        else:
            print(f"{result.num_samples} videos: top-1 {100 * result.top1:.2f}%  top-5 {100 * result.top5:.2f}%  "
                  f"mean class {100 * result.mean_class_accuracy:.2f}%")
    return 0


def _is_main() -> bool:
    """Only rank 0 of a torchrun job prints the summary."""
    return int(os.environ.get("RANK", "0")) == 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train`` and ``eval`` on the ``kgclip`` command's sub-parsers."""
    p = subparsers.add_parser("train", help="train a model from a YAML config (also under torchrun)")
    p.add_argument("--config", required=True, help="a YAML config, e.g. configs/ucf101_fewshot_k2.yaml")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config entries, e.g. optim.lr=2e-5 run.output_dir=runs/x")
    p.set_defaults(func=_train)

    e = subparsers.add_parser("eval", help="evaluate a checkpoint directory on a list file")
    e.add_argument("--checkpoint", required=True, help="a checkpoint directory (config.json, model.safetensors, kg.json)")
    e.add_argument("--list", required=True, help="list file: 'relative/path label_index' lines or a path,label CSV")
    e.add_argument("--video-root", default="", help="folder the list's paths are relative to (default: the list's folder)")
    e.add_argument("--labels", default=None, help="evaluate on another label set than the checkpoint's (zero-shot)")
    e.add_argument("--clips", type=int, default=1, help="temporal views per video")
    e.add_argument("--crops", type=int, choices=(1, 3), default=1, help="spatial crops per view")
    e.add_argument("--batch-size", type=int, default=4)
    e.add_argument("--num-workers", type=int, default=4)
    e.add_argument("--device", default="auto")
    e.add_argument("--out", default=None, help="folder for the report (JSON and confusion-matrix PNG)")
    e.add_argument("--json", action="store_true", help="print metrics and the per-class report as JSON")
    e.set_defaults(func=_eval)
