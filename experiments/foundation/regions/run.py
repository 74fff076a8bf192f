"""Continue the first-stage foundation with and without the region-text loss, measure the three
models (pointing on the heatmap comparison's test clips, zero-shot on the foundation report's),
and save the results of the corpus seed (``common.result_file``)."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from kgclip_core.backbone import BackboneConfig, load_backbone
from kgclip_core.synth.captions import CaptionCorpus, build_corpus
from kgclip_core.synth.foundation import foundation_predictor
from kgclip_core.synth.pretrain import SUMMARY_FILE, WEIGHTS_FILE, Pretrainer
from kgclip_core.synth.render import SynthConfig
from kgclip_core.synth.zeroshot import render_eval_clips, zero_shot_accuracy
from experiments.foundation.common import PER_CLASS, SPLIT_SEEDS, WORK, region_stage_config, stage_dir
from experiments.foundation.regions.common import METHODS, result_file
from experiments.heatmaps.measure import score_clip
from experiments.heatmaps.run import split_clips, unit_embeddings

log = logging.getLogger(__name__)

STAGE_ONE = stage_dir(WORK, 0, "clip") / WEIGHTS_FILE  # made by experiments.foundation
FIRST_SEED = 1  # the first stage saw seed 0's corpus: seeds from 1 on are new to it


def measure(work: Path, init_from: Path, steps: int, corpus_size: int, region_weight: float, seed: int) -> None:
    """Continue ``init_from`` both ways on corpus ``seed`` (reusing runs done), measure the three
    models and save their results."""
    cache: list = []

    def corpus(trainer: Pretrainer) -> CaptionCorpus:  # rendered once, for both runs: they differ only in the loss
        if not cache:
            cfg = trainer.cfg
            cache.append(build_corpus(cfg.corpus_size, cfg.seed, trainer.image_size, cfg.num_frames,
                                      SynthConfig(size=cfg.render_size), grid=trainer.grid))
        return cache[0]

    models = {"first-stage foundation": init_from,
              "control (CLIP's loss)": continued(work, f"control_{steps}_seed{seed}", init_from, 0.0, steps,
                                                 corpus_size, seed, corpus),
              f"regions (weight {region_weight:g})": continued(work, f"regions{region_weight:g}_{steps}_seed{seed}",
                                                                init_from, region_weight, steps, corpus_size, seed,
                                                                corpus)}
    results = {}
    for name, weights in models.items():
        results[name] = {"pointing": pointing(work, weights), "zero_shot": zero_shot(work, weights)}
        log.info("%s: %s", name, results[name])
    result_file(work, steps, seed).write_text(json.dumps(results, indent=1), encoding="utf-8")


def continued(work: Path, name: str, init: Path, region_weight: float, steps: int, corpus_size: int, seed: int,
              corpus: Callable[[Pretrainer], CaptionCorpus]) -> Path:
    """Weights ``init`` pretrained ``steps`` more (reused when done with this config)."""
    out = work / name
    cfg = region_stage_config(init, seed, steps, corpus_size, region_weight)
    summary = out / SUMMARY_FILE
    if summary.is_file() and json.loads(summary.read_text())["config"] == json.loads(json.dumps(asdict(cfg))):
        return out / WEIGHTS_FILE
    trainer = Pretrainer(cfg, out)
    return trainer.run(corpus(trainer)).weights


def pointing(work: Path, weights: Path) -> dict:
    """Patch pointing (%) of each method over the test split's (frame, unit) pairs, overall and by part."""
    predictor = foundation_predictor(weights, device="cpu")
    unit_emb, rng, rows = unit_embeddings(predictor), np.random.default_rng(0), []
    for truth, frames, indices, images in split_clips(work / "heatmap_clips", predictor, "test"):
        rows += score_clip(predictor.backbone, images, frames.shape[1:3], truth, indices, unit_emb, METHODS, rng)
    parts = defaultdict(list)
    for r in rows:
        parts[r["part"].split()[-1]].append(r)
    share = lambda rs, m: round(100 * float(np.mean([r["methods"][m]["patch"] for r in rs])), 1)  # noqa: E731
    return {"pairs": len(rows), "random": round(100 * float(np.mean([r["baseline"]["patch"] for r in rows])), 1),
            "methods": {m: share(rows, m) for m in METHODS},
            "parts": {p: {"pairs": len(rs), **{m: share(rs, m) for m in METHODS}} for p, rs in sorted(parts.items())}}


def zero_shot(work: Path, weights: Path) -> dict:
    """Zero-shot top-1 (%) on the foundation report's test clips of both label sets."""
    backbone = load_backbone(BackboneConfig("kgclip-synth", pretrained=str(weights), device="cpu",
                                            use_text_cache=False))
    out = {}
    for label_set, per_class in PER_CLASS.items():
        clips = render_eval_clips(work / "zs_clips" / label_set, label_set, per_class, SPLIT_SEEDS["test"])
        out[label_set] = {k: round(v, 1) for k, v in zero_shot_accuracy(backbone, clips).items()}
    return out
