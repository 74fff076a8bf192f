"""Train the papers' grid, its development sweep and its controls, appending each finished
run's row to the work folder (``common.RESULTS``, ``DEV``, ``CONTROLS``; the demo is ``demo.py``).

Every row carries per-clip correctness (for the report's paired statistics) and the foundation's
digest; a run whose row is there for the current foundation is skipped.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import build_model
from experiments import jsonl
from experiments.papers import controls
from experiments.papers.common import BATCH, DEV_LRS, SEEDS, SHUFFLED, foundation_digest, read_rows
from experiments.papers.setup import CLASS_TEXT, HEADS, SETTINGS, Clips, GridRun
from experiments.papers.train import clip_scores, label_classes, train_model

log = logging.getLogger(__name__)

SETTING = {s.name: s for s in SETTINGS}
# The controls' settings, most needed first (the grid's first blocks are K=2 and supervised).
CONTROL_SETTINGS = tuple(SETTING[name] for name in ("K=2", "supervised", "K=4", "K=8", "T=2", "T=4"))


def grid_runs() -> list[GridRun]:
    """Every run of the grid, most important first: few-shot K=2 (the cheapest runs, and with
    the zero-shot novel compositions, the papers' two claims), then supervised, then plain
    against full in the other settings (few-shot runs cost a third of a supervised one), the
    single-head variants and the arms of the papers' own choices at K=2, and last the
    few-shot and supervised ablations."""
    def block(variants: tuple[str, ...], settings: tuple[str, ...], **arm) -> list[GridRun]:
        return [GridRun(v, SETTING[s], seed, **arm) for s in settings for seed in SEEDS for v in variants]

    plain_full = ("plain CLIP", "full KG-CLIP")
    ablations = ("+WTI", "+MRA/SU/decoder", "+KG triplet", "full, shuffled KG", "full, no KG losses")
    return [
        *block(plain_full, ("K=2",)),
        *block(("full, shuffled KG", "full, no KG losses"), ("K=2",)),
        *block(plain_full, ("supervised",)),
        *block(plain_full, ("K=4", "K=8", "T=2", "T=4")),
        *block(("+WTI", "+MRA/SU/decoder", "+KG triplet"), ("K=2",)),
        # The arms of the papers' own choices: their fidelity switches, and a frozen text tower.
        *block(("full KG-CLIP",), ("K=2",), papers=True),
        *block(plain_full, ("K=2",), train_text=False),
        *block(ablations, ("K=4", "K=8")),
        *block(("full KG-CLIP",), ("supervised",), papers=True),
        *block(plain_full, ("supervised",), train_text=False),
        *block(ablations, ("supervised",)),
    ]


def dev_runs() -> list[GridRun]:
    """The development sweep: the backbone lr for plain and full, seed 0, few-shot K=2 (the
    supervised runs cost three times as much)."""
    return [GridRun(v, SETTING["K=2"], 0, lr=lr) for lr in DEV_LRS for v in ("plain CLIP", "full KG-CLIP")]


def _correct(logits: torch.Tensor, labels: torch.Tensor) -> list[int]:
    return (logits.argmax(1) == labels).int().tolist()


def run_one(run: GridRun, clips: Clips, splits: tuple[str, ...]) -> dict:
    """Train one run, then its per-clip correctness on the 24 classes of each split and, at 8
    frames, zero-shot on the novel compositions by description and by name."""
    start = time.perf_counter()
    spec = run.spec()
    model, _ = train_model(spec, clips.train)  # the spec's few-shot subset is drawn there
    shuffle = run.seed if run.variant == SHUFFLED else None
    row = {"key": run.key, "foundation": foundation_digest(), "variant": run.variant, "setting": run.setting.name,
           "seed": run.seed, "train_text": run.train_text, "lr": run.lr, "papers": run.papers, "steps": run.steps}
    for split in splits:
        _, classes = label_classes(model, "synthetic", shuffle_seed=shuffle)
        row[f"{split}/synthetic"] = _correct(clip_scores(model, clips.eval[f"{split}/synthetic"], classes)[0],
                                             clips.eval[f"{split}/synthetic"].labels)
        if run.setting.frames == 8:
            novel = clips.eval[f"{split}/synthetic_novel"]
            for text in ("description", "name"):
                _, classes = label_classes(model, "synthetic_novel", text, shuffle_seed=shuffle)
                row[f"{split}/novel/{text}"] = _correct(clip_scores(model, novel, classes)[0], novel.labels)
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def control_rows(clips: Clips, path: Path, split: str = "test") -> None:
    """The zero-shot foundation (once) and, per setting and seed, the linear probe and the tiny
    CNN; each row is appended to ``path`` as it is done (those already there are skipped)."""
    done = set(read_rows(path, foundation_digest()))
    zs_model = build_model(ModelConfig.plain_clip(**HEADS), device="cpu").eval()
    test = clips.eval[f"{split}/synthetic"]

    def add(row: dict) -> None:
        jsonl.append(path, {**row, "foundation": foundation_digest()})

    if "zero-shot" not in done:
        row = {"key": "zero-shot", "variant": "foundation zero-shot", "setting": "any", "seed": 0}
        for text in ("description", "name"):
            suffix = "" if text == CLASS_TEXT else f"/{text}"  # the grid's own class text has the plain key
            for label_set, key in (("synthetic", f"{split}/synthetic{suffix}"),
                                   ("synthetic_novel", f"{split}/novel/{text}")):
                data = clips.eval[f"{split}/{label_set}"]
                _, classes = label_classes(zs_model, label_set, text)
                row[key] = _correct(clip_scores(zs_model, data, classes)[0], data.labels)
        add(row)
    features: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # frames -> (train, test), computed once
    for setting in CONTROL_SETTINGS:
        for seed in SEEDS:
            idx = controls.subset_indices(clips.train, setting.shots, seed)
            key = f"linear probe|{setting.name}|{seed}"
            if key not in done:
                if setting.frames not in features:
                    features[setting.frames] = (controls.frame_features(zs_model, clips.train, setting.frames),
                                                controls.frame_features(zs_model, test, setting.frames))
                x_train, x_test = features[setting.frames]
                probe = controls.linear_probe(x_train[idx], clips.train.labels[idx], len(test.classes), seed)
                with torch.no_grad():
                    logits = probe(x_test * 10.0)
                add({"key": key, "variant": "linear probe", "setting": setting.name, "seed": seed,
                     f"{split}/synthetic": _correct(logits, test.labels)})
            key = f"tiny CNN|{setting.name}|{seed}"
            if key not in done:
                steps = GridRun("plain CLIP", setting, seed).steps
                net = controls.train_cnn(clips.train.subset(idx), setting.frames, steps, BATCH, seed)
                add({"key": key, "variant": "tiny CNN", "setting": setting.name, "seed": seed,
                     f"{split}/synthetic": controls.cnn_correct(net, test, setting.frames)})


def run_list(runs: list[GridRun], clips: Clips, path: Path, splits: tuple[str, ...], deadline: float,
             shard: tuple[int, int] = (0, 1)) -> None:
    """Run what is not yet in ``path``, appending each row as it finishes, until ``deadline``.
    With ``shard`` (i, n) only every n-th run from the i-th, into a file of its own."""
    done = read_rows(path, foundation_digest())
    i, n = shard
    todo = [r for k, r in enumerate(runs) if k % n == i and r.key not in done]  # stable: shards never overlap
    log.info("%d runs done, %d to go in this shard", len(done), len(todo))
    out = path if n == 1 else path.with_name(f"{path.stem}.shard{i}.jsonl")
    for k, run in enumerate(todo):
        if time.time() > deadline:
            log.info("time budget spent: %d runs left for the next session", len(todo) - k)
            return
        row = run_one(run, clips, splits)
        jsonl.append(out, row)
        acc = 100.0 * sum(row[f"{splits[0]}/synthetic"]) / len(row[f"{splits[0]}/synthetic"])
        log.info("%s: %s %.1f%% (%.0f s)", run.key, splits[0], acc, row["seconds"])
