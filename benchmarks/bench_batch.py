"""Throughput of batch recognition (``kgclip predict FOLDER --out``) against its floor.

- ``floor``: open_clip's ``encode_image`` alone on frames already decoded and preprocessed, in
  batches of the same size (``--batch-size`` clips x ``--frames`` frames): what the backbone can
  do when nothing else runs;
- ``engine``: ``kgclip_core.batch.run_batch`` end to end over the same clips: decoding in
  ``--workers`` processes, the frames through the backbone, scoring and explaining each clip,
  one JSON line each. The model is loaded and the label set embedded before the clock starts
  (both once per run whatever its length; their times are printed apart).

The floor is measured before and after the engine, and the ratio engine / floor is taken
against their mean (a machine shared with other work changes speed over minutes; the two
floors show by how much): it says how much of the decoding and explaining is hidden behind the backbone (target >= 0.85
on CPU). Clips: ``--clips`` short procedural clips rendered with
``kgclip_core.synth`` (40 frames of 112 px at 16 fps, 2.5 s), or a ``--folder`` of your own.
With ``--device cuda`` the table adds the GPU's mean utilisation while the engine runs
(``torch.cuda.utilization``, else ``nvidia-smi``) and its peak memory.

Run (CPU, the real CLIP's compute: ViT-B/32 without downloaded weights):
    python benchmarks/bench_batch.py --clips 200 --model ViT-B-32
the demo model (a tiny CLIP: the backbone costs less than decoding):
    python benchmarks/bench_batch.py --clips 200 --checkpoint checkpoints/synthetic
GPU (benchmarks/gpu_batch.sh runs both, with more workers):
    python benchmarks/bench_batch.py --clips 400 --model ViT-B-16 --device cuda --batch-size 32 --workers 8
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgclip_core.backbone import BackboneConfig  # noqa: E402
from kgclip_core.batch import BatchOptions, list_clips, run_batch  # noqa: E402
from kgclip_core.model.config import ModelConfig  # noqa: E402
from kgclip_core.predictor import Predictor, PredictorConfig  # noqa: E402
from kgclip_core.video import read_clip  # noqa: E402


def render_clips(count: int, folder: Path) -> Path:
    """``count`` synthetic clips (every action in turn) under ``folder``."""
    from kgclip_core.synth.actions import label_set_actions
    from kgclip_core.synth.dataset import write_dataset

    per_class = math.ceil(count / len(label_set_actions("synthetic")))
    write_dataset(folder, per_class=per_class, seed=1)
    for extra in sorted((folder / "videos").rglob("*.mp4"))[count:]:
        extra.unlink()
    return folder / "videos"


def load_predictor(args: argparse.Namespace) -> Predictor:
    """The model the CLI would load for these options (a checkpoint, else a training-free CLIP)."""
    if args.checkpoint:
        return Predictor.from_checkpoint(args.checkpoint, device=args.device)
    backbone = BackboneConfig(args.model, args.pretrained, allow_random=args.pretrained is None, device=args.device)
    model = ModelConfig.training_free_preset(backbone=args.model, pretrained=args.pretrained, num_frames=args.frames)
    return Predictor.from_config(PredictorConfig(backbone=backbone, model=model, num_frames=args.frames))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def floor(predictor: Predictor, paths: list[str], batch_size: int) -> float:
    """Clips per second of ``encode_image`` alone on preprocessed frames, ``batch_size`` clips a call."""
    bb = predictor.backbone
    images = [bb.preprocess(read_clip(p, predictor.cfg.num_frames, short_side=predictor.cfg.short_side).frames[0])
              for p in paths]
    batches = [torch.cat(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    with torch.no_grad():
        bb.model.encode_image(batches[0])  # warm-up (kernels, allocator)
        sync(bb.device)
        start = time.perf_counter()
        for batch in batches:
            bb.model.encode_image(batch)
        sync(bb.device)
    return len(paths) / (time.perf_counter() - start)


class GpuUse:
    """Mean GPU utilisation (%) sampled every 0.1 s while in the ``with`` block; None off GPU."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.samples, self._stop = device, [], threading.Event()

    def _sample(self) -> float | None:
        try:
            return float(torch.cuda.utilization(self.device))
        except Exception:  # noqa: BLE001 - no pynvml: ask nvidia-smi
            index = self.device.index or 0
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  "-i", str(index)], capture_output=True, text=True)
            return float(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            if (value := self._sample()) is not None:
                self.samples.append(value)

    def __enter__(self) -> GpuUse:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self._stop.set()
            self._thread.join()

    def summary(self) -> str:
        if self.device.type != "cuda":
            return "-"
        mean = f"{sum(self.samples) / len(self.samples):.0f}%" if self.samples else "n/a"
        return f"{mean}, peak {torch.cuda.max_memory_allocated(self.device) / 2**30:.1f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=200, help="clips to render (ignored with --folder)")
    parser.add_argument("--folder", default=None, help="a folder of your own clips instead")
    parser.add_argument("--checkpoint", default=None, help="a checkpoint directory (else --model, training-free)")
    parser.add_argument("--model", default="ViT-B-32", help="open_clip model name")
    parser.add_argument("--pretrained", default=None, help="open_clip weights (default: none, random: same compute)")
    parser.add_argument("--labels", default="synthetic", help="label set")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda: this machine has no CUDA device; use --device cpu.")
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        folder = Path(args.folder) if args.folder else render_clips(args.clips, work / "clips")
        paths = list_clips(str(folder))
        start = time.perf_counter()
        predictor = load_predictor(args)
        loaded = time.perf_counter() - start
        label_set = predictor.resolve_labels(args.labels)
        start = time.perf_counter()
        predictor.classes(label_set)
        embedded = time.perf_counter() - start
        device = predictor.backbone.device
        before = floor(predictor, paths, args.batch_size)
        opts = BatchOptions(batch_size=args.batch_size, workers=args.workers, top_k=5, device=args.device)
        with GpuUse(device) as gpu:
            sync(device)
            start = time.perf_counter()
            summary = run_batch(str(folder), work / "preds.jsonl", lambda _: predictor, label_set, opts,
                                frames=predictor.cfg.num_frames)
            sync(device)
            seconds = time.perf_counter() - start
        engine_rate = summary.predicted / seconds
        after = floor(predictor, paths, args.batch_size)
        name = args.checkpoint or f"{args.model} ({args.pretrained or 'random weights'}, training-free)"
        hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else \
            f"CPU, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores"
        print(f"\n{name} on {hardware}; load average {os.getloadavg()[0]:.2f} at the end; model loaded in "
              f"{loaded:.1f} s, {len(label_set)} labels embedded in {embedded:.1f} s (once, not in the times below)\n")
        print("| clips | frames | batch | workers | floor: encode_image clips/s (before, after) | engine clips/s | "
              "engine / mean floor | errors | GPU |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        print(f"| {len(paths)} | {predictor.cfg.num_frames} | {args.batch_size} | {args.workers} | {before:.2f}, "
              f"{after:.2f} | {engine_rate:.2f} | {engine_rate / ((before + after) / 2):.2f} | {summary.errors} | "
              f"{gpu.summary()} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
