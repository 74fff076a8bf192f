"""The ``kgclip`` console command.

``predict`` and ``cache`` live here; the knowledge-graph, synthetic-data and training commands register
their own sub-parsers (``add_parser``) so each stays next to the code it drives.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from kgclip_core.backbone import BackboneConfig
from kgclip_core.errors import ConfigError, KGClipError
from kgclip_core.heatmaps import check_method
from kgclip_core.model.config import CLASS_TEXTS, ModelConfig
from kgclip_core.model.kgclip import ClassProgress
from kgclip_core.outputs import check_new_files
from kgclip_core.text_cache import DEFAULT_MAX_MB, max_bytes
from kgclip_core.video_out import partial_path

if TYPE_CHECKING:
    from kgclip_core.predictor import Predictor


def add_backbone_args(parser: argparse.ArgumentParser) -> None:
    """The options that choose a CLIP backbone, shared by every command that loads one."""
    parser.add_argument("--model", default=None, help="open_clip model name (default: ViT-B-16 on GPU, ViT-B-32 on CPU)")
    parser.add_argument("--pretrained", default=None, help="open_clip pretrained tag or a local weights file")
    parser.add_argument("--random-weights", action="store_true",
                        help="use random weights when none can be loaded (UI demo only: predictions are meaningless)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--cache-dir", default=None,
                        help="text-embedding cache folder, e.g. a Space's persistent storage "
                             "(default: $KGCLIP_CACHE_DIR, else ~/.cache/kgclip)")
    parser.add_argument("--cache-max-mb", default=None,
                        help="cap of the text-embedding cache; least recently used entries go past it "
                             f"(default: $KGCLIP_CACHE_MAX_MB, else {DEFAULT_MAX_MB})")


def configure_cache(args: argparse.Namespace) -> None:
    """Apply ``--cache-dir`` and ``--cache-max-mb`` to this process.

    Through the environment, because every backbone this process loads (a checkpoint's too)
    reads its cache's place and cap there.
    """
    if getattr(args, "cache_dir", None):
        os.environ["KGCLIP_CACHE_DIR"] = args.cache_dir
    if getattr(args, "cache_max_mb", None) is not None:
        max_bytes("--cache-max-mb", args.cache_max_mb)  # refused here, before anything loads
        os.environ["KGCLIP_CACHE_MAX_MB"] = args.cache_max_mb


def print_progress(what: str) -> ClassProgress:
    """A progress callback that keeps one line on stderr up to date: ``what: done/total texts``."""
    def show(done: int, total: int) -> None:
        print(f"\r{what}: {done}/{total} texts embedded", end="\n" if done >= total else "",
              file=sys.stderr, flush=True)

    return show


def backbone_config(args: argparse.Namespace) -> BackboneConfig:
    """A BackboneConfig from the options of :func:`add_backbone_args`."""
    cfg = BackboneConfig.default_for(args.device, allow_random=args.random_weights)
    if args.model:
        cfg.model_name = args.model
    if args.pretrained:
        cfg.pretrained = args.pretrained
    elif args.random_weights and args.model:
        cfg.pretrained = None  # a named model without weights: the user asked for random ones
    return cfg


def _load_predictor(args: argparse.Namespace, num_frames: int = 8) -> Predictor:
    """The model a command asked for: a checkpoint, else a training-free pretrained CLIP."""
    from kgclip_core.predictor import Predictor, PredictorConfig

    if args.checkpoint:
        return Predictor.from_checkpoint(args.checkpoint, device=args.device)
    cfg = PredictorConfig(backbone=backbone_config(args), num_frames=num_frames)
    cfg.model = ModelConfig.training_free_preset(backbone=cfg.backbone.model_name, pretrained=cfg.backbone.pretrained,
                                                 num_frames=num_frames, class_text=args.class_text)
    try:
        return Predictor.from_config(cfg)
    except KGClipError as err:
        if not args.random_weights:
            raise
        logging.getLogger(__name__).warning("%s\nFalling back to random weights as asked.", err)
        cfg.backbone.pretrained = cfg.model.pretrained = None
        return Predictor.from_config(cfg)


def _check_report_path(path: str | None, clip: str, with_video: bool = True) -> Path | None:
    """The --report path, refused before any model loads when it cannot be written, or when the
    report or its video (``with_video``: a prediction's, not a timeline's) would replace a file
    (the input clip above all)."""
    if path is None:
        return None
    out = Path(path).expanduser()
    if out.suffix.lower() not in {".html", ".htm"}:
        beside = " (the video goes beside it as .mp4)" if with_video else ""
        raise ConfigError(f"--report takes an .html path{beside}; got {path!r}.")
    video = out.with_suffix(".mp4")
    extra = len(os.fsencode(partial_path(video).name)) - len(os.fsencode(video.name)) if with_video else 0
    check_new_files("--report", [out, video] if with_video else [out], inputs=[clip], extra_name_bytes=extra)
    return out


def check_device(device: str) -> None:
    """Refuse a CUDA device this machine does not have, before anything loads (else the failure
    surfaces later as a misleading message about weights)."""
    if not device.startswith("cuda"):
        return
    count = torch.cuda.device_count()
    if count == 0:
        raise ConfigError(f"--device {device}: this machine has no CUDA device (torch sees no GPU); "
                          "use --device cpu or auto.")
    index = device.partition(":")[2]
    if index.isdigit() and int(index) >= count:
        raise ConfigError(f"--device {device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}.")


def _predict(args: argparse.Namespace) -> int:
    from kgclip_core.batch import is_batch_source

    if args.timeline:
        return _predict_timeline(args)
    if args.out is not None or is_batch_source(args.clip):
        return _predict_batch(args)
    report = _check_report_path(args.report, args.clip)
    predictor = _load_predictor(args, args.frames)
    if args.heatmap:
        predictor.cfg.heatmap_method = check_method(args.heatmap)
    labels = args.labels or args.label_list
    pred = predictor.predict(args.clip, labels=labels, top_k=args.top_k, progress=print_progress("label set"))
    if report is not None:
        from kgclip_core.report import write_report  # drawing needs matplotlib, only wanted here

        html_path, video_path = write_report(pred, report)
        print(f"Report: {html_path}\nHeatmap video: {video_path}", file=sys.stderr)
    if args.json:
        print(json.dumps(pred.to_dict(), indent=2))
        return 0
    for warning in pred.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"{args.clip}  [{pred.model}, {len(pred.frame_indices)} frames, label set {pred.label_set}]")
    for rank, (label, score) in enumerate(zip(pred.labels, pred.scores), start=1):
        print(f"{rank:>2}. {label:<40} {score:6.1%}")
    return 0


def _predict_timeline(args: argparse.Namespace) -> int:
    """``kgclip predict CLIP --timeline``: what happens when, window by window (kgclip_core.timeline)."""
    from kgclip_core.batch import is_batch_source
    from kgclip_core.timeline import TimelineConfig, timeline

    for flag in ("heatmap", "out"):
        if getattr(args, flag) is not None:
            raise ConfigError(f"--{flag} does not go with --timeline (its JSON, --json, holds every window).")
    if is_batch_source(args.clip):
        raise ConfigError("--timeline is for one video file, not a folder or a list.")
    given = {"window_s": args.window, "stride_s": args.stride}
    cfg = TimelineConfig(**{k: v for k, v in given.items() if v is not None})  # refused before any model loads
    report = _check_report_path(args.report, args.clip, with_video=False)
    predictor = _load_predictor(args, args.frames)
    line = timeline(predictor, args.clip, args.labels or args.label_list, args.top_k, cfg,
                    class_progress=print_progress("label set"))
    if report is not None:
        from kgclip_core.report import write_timeline_report  # drawing needs matplotlib, only wanted here

        print(f"Report: {write_timeline_report(line, report)}", file=sys.stderr)
    if args.json:
        print(json.dumps(line.to_dict(), indent=2))
        return 0
    for warning in line.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"{args.clip}  [{line.model}, {len(line.windows)} windows of {line.window_s:g} s every {line.stride_s:g} s, "
          f"{line.frames_per_window} frames each ({line.frames_decoded} decoded), label set {line.label_set}]")
    for seg in line.segments:
        print(f"{seg.start:8.2f} s - {seg.end:8.2f} s  {seg.label:<40} {seg.score:6.1%}"
              f"{'  (not sure)' if seg.unsure else ''}")
    return 0


def _predict_batch(args: argparse.Namespace) -> int:
    """``kgclip predict FOLDER|LIST --out OUT.jsonl``: one JSON line per clip (kgclip_core.batch)."""
    from kgclip_core.batch import BatchOptions, run_batch

    for flag in ("report", "json", "heatmap"):
        if getattr(args, flag):
            raise ConfigError(f"--{flag} is for one clip; a batch writes one JSON line per clip to --out.")
    if args.out is None:
        raise ConfigError(f"{args.clip!r} names many clips: give --out FILE.jsonl for their predictions "
                          "(one JSON line per clip).")
    opts = BatchOptions(batch_size=args.batch_size, workers=args.workers, top_k=args.top_k,
                        retry_errors=args.retry_errors, device=args.device)

    def load(device: str) -> Predictor:  # on this rank's device (torchrun: one GPU per rank)
        return _load_predictor(argparse.Namespace(**{**vars(args), "device": device}), args.frames)

    done = run_batch(args.clip, args.out, load, args.labels or args.label_list, opts, args.frames,
                     text_progress=print_progress("label set"))
    if done.is_main:
        print(f"{done.out}: {done.clips} clips, {done.skipped} already there, {done.predicted} predicted now "
              f"({done.errors} could not be: their lines say why)", file=sys.stderr)
    return 0


def _cache(args: argparse.Namespace) -> int:
    predictor = _load_predictor(args)
    if predictor.backbone.random_weights:
        print("WARNING: random weights are drawn afresh on every start, so no later run can read these "
              "entries; use real weights to fill a cache.", file=sys.stderr)
    for name in args.labels:
        predictor.classes(predictor.resolve_labels(name), progress=print_progress(name))
    cache = predictor.backbone.cache
    size = sum(size for _, size in cache.entries())
    print(f"{cache.cache_dir}: {len(cache.entries())} entries, {size / 2**20:.1f} MB "
          f"(cap {cache.max_bytes / 2**20:.0f} MB)")
    return 0


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="a trained checkpoint directory (overrides --model)")
    p.add_argument("--class-text", choices=CLASS_TEXTS, default="name",
                   help="training-free class embedding: name prompts or the knowledge-graph description")
    add_backbone_args(p)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify a video clip")
    p.add_argument("clip", help="a video file; or a folder of videos or a list file (.txt, one path a line), "
                                "predicted into --out")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--labels", default=None,
                       help="built-in label set (kinetics400, ucf101, hmdb51, kinetics_tps24) or a .txt file "
                            "(default: the checkpoint's labels, else kinetics400)")
    group.add_argument("--label-list", nargs="+", default=None, help="labels given one by one")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--frames", type=int, default=8, help="frames sampled from the clip")
    p.add_argument("--json", action="store_true", help="print the prediction as JSON")
    p.add_argument("--report", default=None, metavar="OUT.html",
                   help="also write a self-contained HTML report (frames with heatmaps, evidence, concepts) "
                        "and OUT.mp4, the clip with the heatmap overlaid; with --timeline, the timeline's page "
                        "(its segments along the clip, each with a still and its concepts)")
    p.add_argument("--heatmap", default=None, metavar="METHOD",
                   help="how the selected units' maps are made: cosine, surgery, clearclip, sclip, maskclip "
                        "(no backward pass), legrad, grad-eclip, integrated-gradients, occlusion (slower); "
                        "default: the Predictor's, measured in docs/EXPLAIN.md")
    timeline = p.add_argument_group("timeline (what happens when in a long clip; docs/TIMELINE.md)")
    timeline.add_argument("--timeline", action="store_true",
                          help="classify windows over the whole clip and merge them into segments")
    timeline.add_argument("--window", type=float, default=None, metavar="SECONDS",
                          help="how long each window is (default 2)")
    timeline.add_argument("--stride", type=float, default=None, metavar="SECONDS",
                          help="time from one window's start to the next's (default 0.5)")
    batch = p.add_argument_group("batch (a folder or a list of clips; docs/BATCH.md)")
    batch.add_argument("--out", default=None, metavar="OUT.jsonl",
                       help="write one JSON line per clip here; a rerun skips the clips already in it")
    batch.add_argument("--batch-size", type=int, default=8, help="clips whose frames go through the backbone together")
    batch.add_argument("--workers", type=int, default=2, help="processes decoding clips beside the model (0: none)")
    batch.add_argument("--retry-errors", action="store_true", help="predict again the clips whose line is an error")
    _add_model_args(p)
    p.set_defaults(func=_predict)


def _add_cache(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="embed label sets ahead of time into the text-embedding cache",
                       description="Embed label sets into the text-embedding cache, e.g. while building a "
                                   "Space or to fill a shared cache folder, so the first prediction is fast.")
    p.add_argument("--labels", nargs="+", required=True,
                   help="built-in label sets (kinetics400, ucf101, hmdb51, ...) or label .txt files")
    _add_model_args(p)
    p.set_defaults(func=_cache)


# Each registers its own sub-command(s) next to the code it drives.
_COMMAND_MODULES = ("kgclip_core.kg.cli", "kgclip_core.synth.cli", "kgclip_core.training.cli")


def build_parser() -> argparse.ArgumentParser:
    """The full ``kgclip`` argument parser."""
    parser = argparse.ArgumentParser(prog="kgclip", description="KG-CLIP: explainable fine-grained action recognition.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_predict(sub)
    _add_cache(sub)
    for module in _COMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kgclip`` command; user errors print a message and exit 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        configure_cache(args)
        check_device(getattr(args, "device", None) or "auto")
        return args.func(args)
    except KGClipError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
