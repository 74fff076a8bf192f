"""Pretrain the synthetic world's CLIP on several seeds, measure it zero-shot, ship one seed.

Each seed is pretrained in two stages (``common.STAGES``); every seed's weights and every (seed,
stage, split, label set) zero-shot row (``common.RESULTS``) are kept in the work folder, so a rerun
skips what is done and resumes an interrupted pretraining.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from kgclip_core.backbone import BackboneConfig, load_backbone
from kgclip_core.synth.pretrain import STATE_FILE, SUMMARY_FILE, WEIGHTS_FILE, PretrainConfig, Pretrainer
from kgclip_core.synth.zeroshot import render_eval_clips, zero_shot_accuracy
from experiments import jsonl
from experiments.foundation.common import (PER_CLASS, RESULTS, SHIPPED_DIR, SHIPPED_STAGE, SPLIT_SEEDS, STAGES,
                                           stage_dir, summary_name)
from experiments.weights import digest

log = logging.getLogger(__name__)


def pretrain_seed(work: Path, seed: int, stage: str, cfg: PretrainConfig) -> Path:
    """The weights of one seed's stage: reused when finished with this config, else trained (resumed)."""
    out = stage_dir(work, seed, stage)
    summary = out / SUMMARY_FILE
    if (out / WEIGHTS_FILE).is_file() and summary.is_file():
        if json.loads(summary.read_text())["config"] == json.loads(json.dumps(asdict(cfg))):
            return out
    trainer = Pretrainer(cfg, out)
    if (out / STATE_FILE).is_file():
        trainer.resume(out / STATE_FILE)
    trainer.run()
    return out


def evaluate_seed(work: Path, seed: int, stage: str) -> None:
    """Zero-shot accuracy of one seed's weights after ``stage`` on every split and label set
    (cached under the weights' digest: a stage retrained with another recipe is measured again)."""
    weights = stage_dir(work, seed, stage) / WEIGHTS_FILE
    key = digest(weights)
    done = {(r["seed"], r["stage"], r["split"], r["label_set"]) for r in jsonl.read(work / RESULTS)
            if r.get("weights") == key}
    todo = [(s, ls) for s in SPLIT_SEEDS for ls in PER_CLASS if (seed, stage, s, ls) not in done]
    if not todo:
        return
    backbone = load_backbone(BackboneConfig("kgclip-synth", pretrained=str(weights), device="cpu",
                                            use_text_cache=False))
    for split, label_set in todo:
        clips = render_eval_clips(work / "clips" / f"{split}_{label_set}", label_set, PER_CLASS[label_set],
                                  SPLIT_SEEDS[split])
        start = time.perf_counter()
        acc = zero_shot_accuracy(backbone, clips)
        row = {"seed": seed, "stage": stage, "weights": key, "split": split, "label_set": label_set,
               "clips": len(clips.paths),
               "seconds": round(time.perf_counter() - start, 1), **acc}
        log.info("%s", row)
        jsonl.append(work / RESULTS, row)


def ship(work: Path, seed: int) -> None:
    """Copy one seed's weights after the shipped stage, and each stage's summary, to the shipped folder."""
    SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
    files = {WEIGHTS_FILE: stage_dir(work, seed, SHIPPED_STAGE) / WEIGHTS_FILE}
    files |= {summary_name(stage): stage_dir(work, seed, stage) / SUMMARY_FILE for stage in STAGES}
    for name, source in files.items():
        tmp = SHIPPED_DIR / (name + ".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, SHIPPED_DIR / name)
