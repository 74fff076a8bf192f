"""The timeline of a long clip on CPU: peak memory beyond the loaded model, and wall time against
the floor (open_clip's ``encode_image`` of one window's frames) times the number of windows.

Writes a ``--minutes``-long clip (default 10) at ``--size`` (default 1280x720, 25 fps, H.264, a
key frame every 2 s as phones and cameras write them) with PyAV, once, into ``--work``: a pattern
drifting across the frame with moving bars, so every frame differs and the decoder has real work.
Then, per heads setting, in a fresh Python process: load ``--model`` on random weights (the same
compute as real ones, nothing downloaded) and embed ``--labels``; time the floor (best of 5
after a warm-up); reset the peak resident set size (Linux: ``/proc/self/clear_refs``), then run
``kgclip_core.timeline.timeline`` on the clip at the default window and stride, and read the
peak back (``VmHWM``); time the floor again; last, decode the timeline's frames alone (the same
batches, no model) to show what the decoder costs.

- ``added MiB``: the peak during the timeline less the RSS before it (model loaded, label set
  embedded): the timeline's own memory. Target: at most 1.5 GB (1536 MiB).
- ``ratio``: the timeline's wall time / (windows x the floor's best, the lower of the two
  measurements). Target: at most 1.3.

Run: ``python benchmarks/bench_timeline.py [--minutes 10] [--heads training-free all] [--work /tmp/kgclip_bench_timeline]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
FPS = 25


def long_clip(path: Path, minutes: float, width: int, height: int) -> Path:
    """Write the benchmark's clip unless ``path`` holds it already."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.mp4")
    y, x = np.mgrid[0:height, 0:2 * width]
    base = np.stack([(x * 255 // (2 * width)), (y * 255 // height), ((x + y) % 256)], axis=-1).astype(np.uint8)
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = 2 * FPS
        stream.options = {"preset": "veryfast", "crf": "28"}
        for i in range(round(minutes * 60 * FPS)):
            shift = (7 * i) % width  # the pattern drifts; two bars sweep down at their own speeds
            frame = base[:, shift:shift + width].copy()
            for speed, colour in ((3, (255, 255, 255)), (5, (0, 0, 0))):
                row = (speed * i) % (height - 40)
                frame[row:row + 40] = colour
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    partial.rename(path)
    return path


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _floor(backbone, images) -> float:
    """Best of 5 seconds of open_clip's encode_image of one window's frames, after a warm-up."""
    import torch

    with torch.inference_mode():
        backbone.model.encode_image(images)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            backbone.model.encode_image(images)
            times.append(time.perf_counter() - start)
    return min(times)


def measure(clip: str, model: str, heads: str, labels: str) -> dict:
    """One heads setting in this process (see the module docstring)."""
    import torch

    from kgclip_core.backbone import BackboneConfig, load_backbone
    from kgclip_core.model import KGClipModel, ModelConfig
    from kgclip_core.predictor import Predictor, PredictorConfig
    from kgclip_core.timeline import BATCH_FRAMES, timeline
    from kgclip_core.video import FrameSource, read_clip

    torch.manual_seed(0)
    backbone = load_backbone(BackboneConfig(model, None, allow_random=True, device="cpu", use_text_cache=False))
    cfg = (ModelConfig.training_free_preset(backbone=model, pretrained=None) if heads == "training-free"
           else ModelConfig(backbone=model, pretrained=None))
    predictor = Predictor(KGClipModel(cfg, backbone).eval(), PredictorConfig(backbone=backbone.cfg))
    predictor.classes(predictor.resolve_labels(labels))  # embedded once, as in a session
    images = backbone.preprocess(read_clip(clip, predictor.cfg.num_frames).frames[0])
    floor_before = _floor(backbone, images)
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kib("VmRSS")
    start = time.perf_counter()
    line = timeline(predictor, clip, labels)
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    floor_after = _floor(backbone, images)
    frames = sorted({i for w in line.windows for i in w.frame_indices})
    source = FrameSource(clip, predictor.cfg.short_side)
    start = time.perf_counter()
    for batch in range(0, len(frames), BATCH_FRAMES):
        source.read(np.asarray(frames[batch:batch + BATCH_FRAMES]))
    decode = time.perf_counter() - start
    return {"windows": len(line.windows), "decoded": line.frames_decoded, "segments": len(line.segments),
            "seconds": seconds, "floor": min(floor_before, floor_after), "floors": [floor_before, floor_after],
            "base": base, "peak": peak, "decode": decode, "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--size", default="1280x720", metavar="WxH")
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--heads", nargs="+", default=["training-free", "all"], choices=["training-free", "all"])
    p.add_argument("--labels", default="ucf101")
    p.add_argument("--work", type=Path, default=Path("/tmp/kgclip_bench_timeline"))
    p.add_argument("--child", nargs=3, metavar=("CLIP", "HEADS", "LABELS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.model, args.child[1], args.child[2])))
        return
    width, height = map(int, args.size.split("x"))
    start = time.perf_counter()
    clip = long_clip(args.work / f"long_{args.minutes:g}min_{width}x{height}.mp4", args.minutes, width, height)
    made = time.perf_counter() - start
    print(f"clip: {clip.name}, {clip.stat().st_size / 2**20:.0f} MB ({made:.0f} s to write or find); "
          f"{args.model} random weights, labels {args.labels}; load average {os.getloadavg()[0]:.1f} at the start\n")
    print("| heads | windows | frames decoded | floor: encode_image, 8 frames (s) | windows x floor (s) "
          "| timeline (s) | ratio (target <= 1.3) | of which decoding alone (s) | RSS before (MiB) | peak (MiB) "
          "| added (MiB, target <= 1536) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for heads in args.heads:
        out = subprocess.run([sys.executable, __file__, "--model", args.model, "--child", str(clip), heads, args.labels],
                             check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        r = json.loads(out.stdout.strip().splitlines()[-1])
        budget = r["windows"] * r["floor"]
        print(f"| {heads} | {r['windows']} | {r['decoded']} | {r['floor']:.3f} ({r['floors'][0]:.3f} before, "
              f"{r['floors'][1]:.3f} after) | {budget:.0f} | {r['seconds']:.0f} | {r['seconds'] / budget:.2f} "
              f"| {r['decode']:.0f} | {r['base'] / 1024:.0f} | {r['peak'] / 1024:.0f} "
              f"| {(r['peak'] - r['base']) / 1024:.0f} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end; torch threads {r['threads']}")


if __name__ == "__main__":
    main()
