"""Run the whole testbed: data, every training run, the pointing game, the report.

The demo checkpoint is no longer built here: it is fine-tuned from the foundation by
``python -m experiments.papers`` (``experiments/papers/demo.py``).

Runs are independent, so they go to a small pool of processes (one thread each: the
machine's cores are shared). Finished runs are appended to ``results.jsonl`` in the work
folder; running again skips them, so an interrupted testbed resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path

import torch

from kgclip_core.model.kgclip import build_model
from experiments.testbed.data import ClipSet, ensure_dataset, load_clip_set
from experiments.testbed.pointing import pointing_game
from experiments.testbed.train import VARIANTS, RunSpec, accuracy, label_classes, model_config, train_model

log = logging.getLogger(__name__)

SEEDS = (0, 1, 2)
SHOTS = (2, 4, 8)
FRAMES = (2, 4, 8)
PER_CLASS, VAL_PER_CLASS, NOVEL_PER_CLASS = 46, 6, 6
# (supervised, few-shot) steps per text-tower protocol (trained: True). Training the text tower
# makes a step about 1.7x as costly, so its grid takes 3/4 of the steps to fit the same time.
STEPS = {True: (300, 75), False: (400, 100)}
POINTING_CLIPS_PER_CLASS = 2

_DATA: dict[str, ClipSet] = {}  # filled before the pool forks, shared copy-on-write


def prepare_data(work: Path) -> dict[str, ClipSet]:
    """Render (once) and cache (once) the training, validation and novel clips."""
    cache = work / f"clips_{PER_CLASS}_{VAL_PER_CLASS}_{NOVEL_PER_CLASS}.pt"  # stale when the sizes change
    if cache.is_file():
        return torch.load(cache, weights_only=False)
    synthetic = ensure_dataset(work / "synthetic", "synthetic", PER_CLASS, 0, VAL_PER_CLASS / PER_CLASS)
    novel = ensure_dataset(work / "synthetic_novel", "synthetic_novel", NOVEL_PER_CLASS, 1, 1.0)
    backbone = build_model(model_config("plain CLIP", 8), device="cpu").backbone
    data = {"train": load_clip_set(synthetic, backbone, "train"), "val": load_clip_set(synthetic, backbone, "val"),
            "novel": load_clip_set(novel, backbone, "val")}
    torch.save(data, cache)
    return data


def pointing_subset(val: ClipSet) -> ClipSet:
    """The first clips of every class, for the (costly) pointing game."""
    taken: dict[int, int] = {}
    keep = []
    for i, y in enumerate(val.labels.tolist()):
        if taken.get(y, 0) < POINTING_CLIPS_PER_CLASS:
            taken[y] = taken.get(y, 0) + 1
            keep.append(i)
    return val.subset(keep)


def jobs(train_text: bool = True) -> list[RunSpec]:
    """Every run of the grid: supervised (T = 2, 4, 8) and few-shot, per variant and seed;
    ``train_text`` False: the same runs with the text tower frozen."""
    supervised, shots = STEPS[train_text]
    out = []
    for seed in SEEDS:
        for variant in VARIANTS:
            out += [RunSpec(variant, seed, num_frames=t, steps=supervised, train_text=train_text)
                    for t in FRAMES[::-1]]
            out += [RunSpec(variant, seed, shots=k, steps=shots, train_text=train_text) for k in SHOTS]
    return out


def job_key(spec: RunSpec) -> str:
    # Frozen-text runs keep the keys they had before the text tower could be trained.
    return f"{spec.variant}|{spec.seed}|{spec.num_frames}|{spec.shots}|{spec.steps}" + ("|text" if spec.train_text else "")


def _grid_file(work: Path, name: str, train_text: bool) -> Path:
    """A per-grid bookkeeping file (start time, wall seconds): one per text-tower protocol."""
    return work / (f"{name}_text" if train_text else name)


def run_job(spec: RunSpec) -> dict:
    """Train one run and measure it: validation accuracy; for supervised T=8 runs also the
    novel classes (zero-shot) and the pointing game."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    model, _ = train_model(spec, _DATA["train"])
    _, classes = label_classes(model, "synthetic")
    row = {"key": job_key(spec), "variant": spec.variant, "seed": spec.seed, "num_frames": spec.num_frames,
           "shots": spec.shots, "steps": spec.steps, "batch_size": spec.batch_size, "train_text": spec.train_text,
           "val": accuracy(model, _DATA["val"], classes)}
    if spec.shots == 0 and spec.num_frames == max(FRAMES):
        _, novel = label_classes(model, "synthetic_novel")
        row["novel"] = accuracy(model, _DATA["novel"], novel)
        row["pointing"] = pointing_game(model, pointing_subset(_DATA["val"]), classes)
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _read_rows(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    return {r["key"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def read_results(work: Path, train_text: bool = True) -> list[dict]:
    """The finished runs' rows of one text-tower protocol, in grid order."""
    done = _read_rows(work / "results.jsonl")
    return [done[job_key(s)] for s in jobs(train_text) if job_key(s) in done]


def run_grid(work: Path, processes: int, train_text: bool = True) -> list[dict]:
    """Run every job of the protocol not yet in ``results.jsonl``; returns its rows."""
    path = work / "results.jsonl"
    done = _read_rows(path)
    grid = jobs(train_text)
    started = _grid_file(work, "grid_started", train_text)
    if not any(job_key(s) in done for s in grid):
        started.write_text(str(time.time()), encoding="utf-8")
    todo = [s for s in grid if job_key(s) not in done]
    log.info("%d runs done, %d to go", len(done), len(todo))
    with mp.get_context("fork").Pool(processes) as pool, open(path, "a", encoding="utf-8") as f:
        for row in pool.imap_unordered(run_job, todo):
            f.write(json.dumps(row) + "\n")
            f.flush()
            done[row["key"]] = row
            log.info("%s: val %.1f%% (%.0f s)", row["key"], row["val"]["top1"], row["seconds"])
    if todo:
        _grid_file(work, "grid_seconds", train_text).write_text(
            str(time.time() - float(started.read_text())), encoding="utf-8")
    return [done[job_key(s)] for s in grid]


def grid_wall_seconds(work: Path, train_text: bool = True) -> float | None:
    """Wall seconds from the grid's first run to its last (None before it has finished)."""
    path = _grid_file(work, "grid_seconds", train_text)
    return float(path.read_text(encoding="utf-8")) if path.is_file() else None


def machine() -> str:
    """The machine the testbed ran on, in words."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores (shared), {gpu}, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m experiments.testbed", description=__doc__)
    parser.add_argument("--work", default="/tmp/kgclip_testbed", help="scratch folder: data set, frame cache, results")
    parser.add_argument("--processes", type=int, default=2, help="runs trained at once (one thread each)")
    parser.add_argument("--only", choices=("grid", "collapse", "report"),
                        help="only the grid, only the class-embedding traces, or only rewrite the report "
                             "(default: all)")
    parser.add_argument("--frozen-text", action="store_true",
                        help="run the grid with the text tower frozen (the comparison table) instead of trained")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # Quiet open_clip's per-model chatter (root logger) and the library; keep the testbed's progress.
    logging.getLogger().setLevel(logging.ERROR)
    logging.getLogger("experiments").setLevel(logging.INFO)
    torch.set_num_threads(1)  # the cores are shared: one thread per process
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    _DATA.update(prepare_data(work))
    if args.only in (None, "grid"):
        run_grid(work, args.processes, train_text=not args.frozen_text)
    if args.only in (None, "collapse"):
        from experiments.testbed import collapse

        collapse.build(_DATA, work)
    from experiments.testbed import report

    report.write(read_results(work), Path("docs/TESTBED.md"), machine(), grid_wall_seconds(work), data_summary(), work,
                 frozen_rows=read_results(work, train_text=False), processes=args.processes)
    log.info("done in %.0f s", time.perf_counter() - start)
    return 0


def data_summary() -> dict:
    """Sizes of the cached data, for the report."""
    return {name: {"clips": len(cs), "classes": len(cs.classes)} for name, cs in _DATA.items()}
