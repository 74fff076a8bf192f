"""Peak memory of reading (and predicting on) videos of extreme frame shapes.

For each stored frame shape, writes a 16-frame H.264 clip with PyAV (the tests' own writer,
``tests/_videos.py``), then in a fresh Python process per row measures the resident set size
around one call (Linux: the peak is reset through ``/proc/self/clear_refs`` just before the
call and read back as ``VmHWM``):

- ``decode``: ``read_clip(path, 8)`` at the Predictor's short side (256);
- ``predict``: ``Predictor.predict`` on the tiny open_clip config with random weights (no
  download), which adds the model's preprocessing of the returned frames.

``base`` is the RSS after imports (and building the model), ``peak`` the highest RSS during the
call, ``added`` their difference. ``--repo`` imports ``kgclip_core`` from another checkout, e.g. an export of an
older commit (``git archive HEAD~1 kgclip_core | tar -x -C /tmp/before``), to compare.

Run: ``python benchmarks/bench_video_memory.py [--shapes 8192x16 ...] [--stages decode predict] [--repo DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAPES = [(640, 360), (1920, 1080), (512, 16), (8192, 16), (16, 8192)]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def measure(path: str, stage: str) -> dict:
    """Run one stage on ``path`` in this process; its RSS before and its peak RSS, in KiB."""
    from kgclip_core.video import read_clip

    if stage == "predict":
        from kgclip_core.backbone import BackboneConfig
        from kgclip_core.predictor import Predictor, PredictorConfig

        backbone = BackboneConfig("kgclip-tiny", None, allow_random=True, device="cpu", use_text_cache=False)
        predictor = Predictor.from_config(PredictorConfig(backbone=backbone))
        predictor.classes(predictor.resolve_labels(["run", "jump"]))  # embedded once, as in a session
        call = lambda: predictor.predict(path, labels=["run", "jump"]).frames  # noqa: E731
    else:
        call = lambda: read_clip(path, 8).frames[0]  # noqa: E731
    # ru_maxrss would carry the parent's peak over the exec, and the imports' own: reset it.
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kib("VmRSS")
    start = time.perf_counter()
    try:
        frames = call()
        result = "x".join(map(str, frames.shape[1:3][::-1]))
    except Exception as err:  # an old checkout may fail on these shapes: report it as a row
        result = f"{type(err).__name__}: {str(err)[:40]}"
    seconds = time.perf_counter() - start
    return {"base": base, "peak": _status_kib("VmHWM"), "result": result, "seconds": seconds}


def run_child(path: Path, stage: str, repo: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run([sys.executable, __file__, "--child", str(path), stage], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=[f"{w}x{h}" for w, h in SHAPES], metavar="WxH")
    p.add_argument("--stages", nargs="+", default=["decode", "predict"], choices=["decode", "predict"])
    p.add_argument("--repo", type=Path, default=REPO, help="checkout whose kgclip_core is measured")
    p.add_argument("--child", nargs=2, metavar=("PATH", "STAGE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return

    sys.path.insert(0, str(REPO / "tests"))
    from _videos import ramp_video

    print(f"kgclip_core from {args.repo}\n")
    print("| stored WxH | file kB | stage | frames WxH (or error) | base MiB | peak MiB | added MiB | s |")
    print("|---|---:|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in (map(int, shape.split("x")) for shape in args.shapes):
            path = ramp_video(Path(tmp) / f"{width}x{height}.mp4", width, height, frames=16)
            for stage in args.stages:
                r = run_child(path, stage, args.repo)
                print(f"| {width}x{height} | {path.stat().st_size / 1000:.1f} | {stage} | {r['result']} | "
                      f"{r['base'] / 1024:.0f} | {r['peak'] / 1024:.0f} | {(r['peak'] - r['base']) / 1024:.0f} | "
                      f"{r['seconds']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
