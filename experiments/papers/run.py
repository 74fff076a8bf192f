"""Train the papers' grid, its development sweep and its controls, appending each finished
run's row to the committed row files (``common.RESULTS``, ``DEV``, ``CONTROLS``; the demo is
``demo.py``).

Every row carries per-clip correctness and predictions (for the report's paired statistics,
packed by ``common.pack``) and the foundation's digest; a run whose row is there for the
current foundation is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch

from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import KGClipModel, build_model
from experiments import jsonl
from experiments.papers import controls
from experiments.papers.common import (ARMS, BASELINE, BATCH, DEV_EVERY, DEV_MAX_STEPS, MORE_SEEDS, SEEDS, SHUFFLED,
                                       STEPS, foundation_digest, pack, read_rows)
from experiments.papers.setup import HEADS, SETTINGS, Clips, GridRun
from experiments.papers.train import clip_scores, label_classes, train_model

log = logging.getLogger(__name__)

SETTING = {s.name: s for s in SETTINGS}
# The settings of the papers' questions; supervised once the development sweep chose its steps.
QUESTIONS = ("K=2", "supervised") if STEPS["supervised"] else ("K=2",)


def grid_runs() -> list[GridRun]:
    """Every run of the grid, most important first: the arms of the papers' questions at K=2
    (the cheapest runs), then supervised; then, exploratory and cheap, the single heads, the full
    model without its KG losses and the full model with the KG description at K=2; then the
    supervised primary arms' further seeds (``MORE_SEEDS``: plain and full with names, then the
    shuffled KG); last the supervised full model with the KG description. The supervised runs
    join once the development sweep has chosen their step count."""
    def block(arms: tuple[tuple[str, str], ...], settings: tuple[str, ...],
              seeds: tuple[int, ...] = SEEDS) -> list[GridRun]:
        return [GridRun(v, SETTING[s], seed, class_text=text) for s in settings for seed in seeds for v, text in arms]

    exploratory = (*((v, "name") for v in ("+WTI", "+MRA/SU/decoder", "+KG triplet", "full, no KG losses")),
                   ("full KG-CLIP", "description"))
    supervised = QUESTIONS[1:]
    pair = ARMS[:2]  # plain and full, names
    # Their order alternates seed by seed, so that two shards (--shard i/2) each get both the
    # fast plain runs and the slow full ones, and a seed's pair is done at about the same time.
    more = [run for seed in MORE_SEEDS for run in block(pair if seed % 2 else pair[::-1], supervised, (seed,))]
    return [
        *block(ARMS, ("K=2",)),
        *block(ARMS, supervised),
        *block(exploratory, ("K=2",)),
        *more,
        *block((ARMS[2],), supervised, MORE_SEEDS),
        *block((("full KG-CLIP", "description"),), supervised),
    ]


def dev_runs() -> list[GridRun]:
    """The development sweep of the supervised step count: plain and full with names, seed 0,
    one ``DEV_MAX_STEPS``-step schedule each."""
    return [GridRun(v, SETTING["supervised"], 0, max_steps=DEV_MAX_STEPS) for v in (BASELINE, "full KG-CLIP")]


def _results(logits: torch.Tensor, labels: torch.Tensor) -> tuple[str, str]:
    """Per-clip correctness and predicted classes, packed."""
    pred = logits.argmax(1)
    return pack((pred == labels).int().tolist()), pack(pred.tolist())


def evaluate(model: KGClipModel, run: GridRun, clips: Clips, split: str) -> dict[str, str]:
    """The run's per-clip results on the 24 classes of ``split`` by its own class text and, at 8
    frames, zero-shot on the novel compositions by description and by name: ``{key: correct,
    "pred/" + key: predictions}``. The shuffled-KG arm is evaluated with its knowledge shuffled
    the same way (the novel compositions' among themselves)."""
    shuffle = run.seed if run.variant == SHUFFLED else None
    sets = [("synthetic", None, f"{split}/synthetic")]
    if run.setting.frames == 8:
        sets += [("synthetic_novel", text, f"{split}/novel/{text}") for text in ("description", "name")]
    out = {}
    for label_set, text, key in sets:
        data = clips.eval[f"{split}/{label_set}"]
        _, classes = label_classes(model, label_set, text, shuffle_seed=shuffle)
        out[key], out[f"pred/{key}"] = _results(clip_scores(model, data, classes)[0], data.labels)
    return out


def _row(run: GridRun) -> dict:
    return {"key": run.key, "foundation": foundation_digest(), "variant": run.variant, "class_text": run.class_text,
            "setting": run.setting.name, "seed": run.seed, "train_text": run.train_text, "lr": run.learning_rate,
            "papers": run.papers, "steps": run.steps}


def run_one(run: GridRun, clips: Clips, split: str) -> dict:
    """Train one run, then its row: the run's settings, wall time and per-clip results."""
    start = time.perf_counter()
    model, _ = train_model(run.spec(), clips.train)  # the spec's few-shot subset is drawn there
    return {**_row(run), **evaluate(model, run, clips, split), "seconds": round(time.perf_counter() - start, 1)}


def dev_curve(run: GridRun, clips: Clips) -> dict:
    """Train one development run, reading its accuracy on the development split's 24 classes
    every ``DEV_EVERY`` steps: the row holds the curve (steps -> packed correctness)."""
    start = time.perf_counter()
    data = clips.eval["dev/synthetic"]
    curve: dict[str, str] = {}

    def read(step: int, model: KGClipModel) -> None:
        if step % DEV_EVERY == 0:
            model.eval()
            _, classes = label_classes(model, "synthetic")
            curve[str(step)] = _results(clip_scores(model, data, classes)[0], data.labels)[0]
            model.train()

    train_model(run.spec(), clips.train, on_step=read)
    return {**_row(run), "dev/synthetic by step": curve, "seconds": round(time.perf_counter() - start, 1)}


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
            for label_set, key in (("synthetic", f"{split}/synthetic/{text}"),
                                   ("synthetic_novel", f"{split}/novel/{text}")):
                data = clips.eval[f"{split}/{label_set}"]
                _, classes = label_classes(zs_model, label_set, text)
                row[key], row[f"pred/{key}"] = _results(clip_scores(zs_model, data, classes)[0], data.labels)
        add(row)
    features: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # frames -> (train, test), computed once
    for setting in (SETTING[name] for name in QUESTIONS):
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
                correct, pred = _results(logits, test.labels)
                add({"key": key, "variant": "linear probe", "setting": setting.name, "seed": seed,
                     f"{split}/synthetic": correct, f"pred/{split}/synthetic": pred})
            steps = GridRun(BASELINE, setting, seed).steps
            key = f"tiny CNN|{setting.name}|{seed}|{steps}"
            if key not in done:
                net = controls.train_cnn(clips.train.subset(idx), setting.frames, steps, BATCH, seed)
                add({"key": key, "variant": "tiny CNN", "setting": setting.name, "seed": seed, "steps": steps,
                     f"{split}/synthetic": pack(controls.cnn_correct(net, test, setting.frames))})


def run_list(runs: list[GridRun], work: Callable[[GridRun], dict], path: Path, deadline: float,
             shard: tuple[int, int] = (0, 1)) -> None:
    """Run what is not yet in ``path`` (``work(run)`` makes its row), appending each row as it
    finishes, until ``deadline``. With ``shard`` (i, n) only every n-th run from the i-th, into a
    file of its own."""
    done = read_rows(path, foundation_digest())
    i, n = shard
    todo = [r for k, r in enumerate(runs) if k % n == i and r.key not in done]  # stable: shards never overlap
    log.info("%d runs done, %d to go in this shard", len(done), len(todo))
    out = path if n == 1 else path.with_name(f"{path.stem}.shard{i}.jsonl")
    for k, run in enumerate(todo):
        if time.time() > deadline:
            log.info("time budget spent: %d runs left for the next session", len(todo) - k)
            return
        row = work(run)
        jsonl.append(out, row)
        log.info("%s: done in %.0f s", run.key, row["seconds"])
