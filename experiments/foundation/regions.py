"""Does a region-text signal in pretraining make the foundation's maps point at the named part?

    python -m experiments.foundation.regions              # continue, measure, print the table
    python -m experiments.foundation.regions --steps 400  # a shorter run
    python -m experiments.foundation.regions --seed 2     # another corpus and batch order
    python -m experiments.foundation.regions --report     # the tables over the seeds done, from saved results

The heatmap comparison (docs/EXPLAIN.md) found the foundation's maps peak on the torso: nothing
in its pretraining asks a patch to carry its part's meaning. This experiment tests that reading.
It continues the foundation's first stage (CLIP's loss alone, ``python -m experiments.foundation
--only pretrain``; the shipped foundation until this result made the region stage part of its
recipe) on a fresh corpus twice, for the same steps:

- **control**: CLIP's loss alone (as much more pretraining, no regions);
- **regions**: plus the region-text loss (``PretrainConfig.region_weight``, RegionCLIP's idea
  with the generator's boxes as region annotations).

Then it measures the first-stage foundation, the control and the regions model the same way:

- the pointing game at the patch grid of each cheap map method, for the movement units that name
  a body part, on the heatmap comparison's test clips (``experiments.heatmaps``);
- zero-shot top-1 on the foundation report's test clips (``experiments.foundation``).

The weights and results stay in the work folder; nothing shipped changes.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from kgclip_core.backbone import BackboneConfig, load_backbone
from kgclip_core.synth.captions import CaptionCorpus, build_corpus
from kgclip_core.synth.foundation import foundation_predictor
from kgclip_core.synth.pretrain import SUMMARY_FILE, WEIGHTS_FILE, PretrainConfig, Pretrainer
from kgclip_core.synth.render import SynthConfig
from kgclip_core.synth.zeroshot import render_eval_clips, zero_shot_accuracy
from experiments.foundation.run import PER_CLASS, SPLIT_SEEDS, WORK, region_stage_config, stage_dir
from experiments.heatmaps.measure import score_clip
from experiments.heatmaps.run import split_clips, unit_embeddings

log = logging.getLogger(__name__)

STAGE_ONE = stage_dir(WORK, 0, "clip") / WEIGHTS_FILE  # made by experiments.foundation
METHODS = ["cosine", "clearclip", "sclip", "maskclip"]  # the maps cheap enough for every prediction
FIRST_SEED = 1  # the first stage saw seed 0's corpus: seeds from 1 on are new to it


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


def _cell(values: list[float]) -> str:
    """One value, or the mean over seeds with each seed's value."""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ({', '.join(f'{v:.1f}' for v in values)})"


def table(runs: list[dict[str, dict]]) -> str:
    """The markdown tables over one or more seeds' results: pointing by method, by part (``cosine``
    / ``sclip``), zero-shot accuracy. With several seeds a cell is the mean, then each seed's value."""
    names = list(runs[0])
    first = runs[0][names[0]]["pointing"]
    get = lambda name, path: _cell([_dig(r[name], path) for r in runs])  # noqa: E731
    lines = [f"Pointing, patch (%), test split ({first['pairs']} (frame, unit) pairs; random peak {first['random']}%"
             f"; {len(runs)} seed(s)):", "", "| method | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines += [f"| {m} | " + " | ".join(get(n, ("pointing", "methods", m)) for n in names) + " |" for m in METHODS]
    lines += ["", "By body part, `cosine` / `sclip` (%):", "",
              "| part | pairs | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for part, row in first["parts"].items():
        cells = [f"{get(n, ('pointing', 'parts', part, 'cosine'))} / {get(n, ('pointing', 'parts', part, 'sclip'))}"
                 for n in names]
        lines.append(f"| {part} | {row['pairs']} | " + " | ".join(cells) + " |")
    lines += ["", "Zero-shot top-1 (%), the foundation report's test clips:", "",
              "| label set, class text | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label_set in PER_CLASS:
        for mode in ("name+units", "description+units", "units"):
            lines.append(f"| {label_set}, {mode} | "
                         + " | ".join(get(n, ("zero_shot", label_set, mode)) for n in names) + " |")
    return "\n".join(lines)


def _dig(tree: dict, path: tuple[str, ...]) -> float:
    for key in path:
        tree = tree[key]
    return tree


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/kgclip_regions"), help="scratch folder (resumable)")
    p.add_argument("--steps", type=int, default=1000, help="continued pretraining steps of each run")
    p.add_argument("--corpus-size", type=int, default=3000, help="captioned clips of the continued pretraining")
    p.add_argument("--region-weight", type=float, default=1.0, help="the region-text loss's weight")
    p.add_argument("--seed", type=int, default=FIRST_SEED, help=f"corpus and batch-order seed (>= {FIRST_SEED})")
    p.add_argument("--init-from", type=Path, default=STAGE_ONE,
                   help="the first-stage foundation's weights (experiments.foundation's seed 0)")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--report", action="store_true", help="print the tables over the seeds done, train nothing")
    args = p.parse_args(argv)
    if args.seed < FIRST_SEED:
        p.error(f"--seed must be at least {FIRST_SEED}: seed 0's corpus is the one the foundation was pretrained on")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.ERROR)  # open_clip's chatter
    logging.getLogger("experiments").setLevel(logging.INFO)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.report:
        return report(args.work, args.steps)
    cache: list = []

    def corpus(trainer: Pretrainer) -> CaptionCorpus:  # rendered once, for both runs: they differ only in the loss
        if not cache:
            cfg = trainer.cfg
            cache.append(build_corpus(cfg.corpus_size, cfg.seed, trainer.image_size, cfg.num_frames,
                                      SynthConfig(size=cfg.render_size), grid=trainer.grid))
        return cache[0]

    start = time.perf_counter()
    models = {"first-stage foundation": args.init_from,
              "control (CLIP's loss)": continued(args.work, f"control_{args.steps}_seed{args.seed}", args.init_from,
                                                 0.0,
                                                 args.steps, args.corpus_size, args.seed, corpus),
              f"regions (weight {args.region_weight:g})": continued(
                  args.work, f"regions{args.region_weight:g}_{args.steps}_seed{args.seed}", args.init_from,
                  args.region_weight,
                  args.steps, args.corpus_size, args.seed, corpus)}
    results = {}
    for name, weights in models.items():
        results[name] = {"pointing": pointing(args.work, weights), "zero_shot": zero_shot(args.work, weights)}
        log.info("%s: %s", name, results[name])
    (args.work / f"results_{args.steps}_seed{args.seed}.json").write_text(json.dumps(results, indent=1),
                                                                          encoding="utf-8")
    print(f"{args.steps} more steps on {args.corpus_size} new captioned clips (corpus seed {args.seed}), "
          f"{(time.perf_counter() - start) / 60:.0f} min\n")
    print(table([results]))
    return 0


def report(work: Path, steps: int) -> int:
    """Print the tables over every seed measured in ``work`` at ``steps``; 1 when there is none."""
    files = sorted(work.glob(f"results_{steps}_seed*.json"))
    if not files:
        print(f"No results of {steps} steps in {work}: run without --report first.")
        return 1
    print(f"Seeds {', '.join(f.stem.rsplit('seed', 1)[1] for f in files)}, {steps} steps each:\n")
    print(table([json.loads(f.read_text()) for f in files]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
