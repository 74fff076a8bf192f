"""Does "Why this action" agree with the prediction? Evidence by cosine against evidence by triplet.

    python -m experiments.heatmaps.evidence [--checkpoint checkpoints/synthetic]

On the heatmap comparison's fresh clips (development and test splits, rendered by
``python -m experiments.heatmaps`` into its work folder, or rendered here), for every clip the
checkpoint classifies correctly: the share of the top action's own concepts marked shown, and
the share of the *other* likely actions' own concepts (the runner-up's and one fixed other
action's, those the top action does not share) marked shown, with both measures the Predictor
knows (``kgclip_core.evidence``): the cosine of the concept's text with the frames against all
the label set's concepts, and the model's triplet video-movement score against the strongest
rival concept, among those of its likeliest actions that the top action lacks
(``evidence.evidence_pool``). A measure that explains the prediction marks the first high and
the second low, and leaves few of the top action's concepts in a near tie with its bar (a ✓ or ✗
decided by noise). Prints a markdown table, then how many of the units ASU's selection picks
belong to the true class, which others it picks most, and how many of those that name a body
part name one that moves in the clip (its ground-truth state away from rest in some frame).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kgclip_core.model.kgclip import ClassFeatures, ScoreOutput
from kgclip_core.evidence import EVIDENCE_QUANTILE, clears_bar, evidence_pool
from kgclip_core.predictor import Predictor
from kgclip_core.synth.dataset import read_ground_truth
from kgclip_core.synth.figure import rest_state
from kgclip_core.synth.regions import EXCLUDED_PARTS
from kgclip_core.synth.zeroshot import render_eval_clips
from kgclip_core.video import read_clip
from experiments.heatmaps.common import LABELS, PER_CLASS, SPLIT_SEEDS

# A concept's score counts as a near tie with the bar when it is closer to it than this share of
# a standard deviation of the reference scores: a ✓ or ✗ a learner cannot trust.
NEAR_TIE = 0.1


def named_part(unit: str, parts: list[str]) -> list[str]:
    """The ground-truth part keys a unit's text names: "right hand wave" -> ["right hand"];
    "arm raise" (no side) -> both arms; "wave" or "ball" -> none."""
    words = unit.split()
    for n in (2, 1):
        named = [key for key in parts if key.split() == words[:n] or (n == 1 and key.split()[-1] == words[0])]
        if named:
            return named
    return []


def moving_parts(truth: dict) -> set[str]:
    """The part keys whose ground-truth state leaves rest in some frame of the clip."""
    return {key for frame in truth["frames"] for key, part in frame["parts"].items()
            if key not in EXCLUDED_PARTS and part["state"] != rest_state(key)}


@torch.no_grad()
def evidence_bar(out: ScoreOutput, classes: ClassFeatures, model, measure: str, top: int
                 ) -> tuple[torch.Tensor, float, float]:
    """Every concept's score [U] by ``measure``, the bar a concept must reach to count as shown
    (as ``kgclip_core.evidence`` sets it) and the spread of the reference scores (their standard
    deviation, the yardstick for a near tie)."""
    if measure == "triplet":
        pool = evidence_pool(out.logits[0], classes.class_unit_mask)
        fwd, inv = model.triplet.pair_scores(out.video_emb[:1], "video-movement", classes.unit_emb)
        scores = 0.5 * (fwd + inv)[0]
        rival = pool[~classes.class_unit_mask[top, pool]]
        return scores, float(scores[rival].max()), float(scores[pool].std())
    if out.su is not None:  # the best cosine over each frame's tokens, as SU selection has it
        scores = out.su.frame_scores[0].mean(0)
    else:
        scores = (F.normalize(out.frame_tokens[0], dim=-1) @ classes.unit_emb.T).mean(0)
    return scores, float(torch.quantile(scores, EVIDENCE_QUANTILE)), float(scores.std())


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=Path("checkpoints/synthetic"))
    p.add_argument("--work", type=Path, default=Path("/tmp/kgclip_heatmaps"), help="where the clips are (or go)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    predictor = Predictor.from_checkpoint(args.checkpoint, device="cpu")
    model = predictor.model
    labels = predictor.resolve_labels(LABELS)
    _, classes = predictor.classes(labels)
    measures = ["cosine"] + (["triplet"] if model.triplet is not None else [])
    own: dict[str, list[float]] = {m: [] for m in measures}
    other: dict[str, list[float]] = {m: [] for m in measures}
    ties: dict[str, list[float]] = {m: [] for m in measures}
    selected: list[float] = []  # per clip: the share of ASU's selected units in the true class
    naming = moving = 0  # selected units that name a body part, and of those, one that moves
    wrong: Counter[str] = Counter()  # the selected units outside it, by text
    right = total = 0
    for split, seed in SPLIT_SEEDS.items():
        folder = args.work / "clips" / split
        render_eval_clips(folder, LABELS, PER_CLASS, seed)
        for truth in read_ground_truth(folder):
            total += 1
            clip = read_clip(folder / truth["path"], model.cfg.num_frames, short_side=predictor.cfg.short_side)
            with torch.no_grad():
                out = model.score(model.encode_video(predictor.backbone.preprocess(clip.frames[0])[None]), classes,
                                  explain=False)
            ranked = out.logits[0].argsort(descending=True).tolist()
            top = ranked[0]
            if labels.classes[top] != truth["action"]:
                continue
            right += 1
            mask = classes.class_unit_mask
            if out.su is not None:
                chosen = out.su.indices[0]
                selected.append(float(mask[top, chosen].float().mean()))
                wrong.update(classes.unit_texts[u] for u in chosen.tolist() if not mask[top, u])
                clip_parts = [key for key in truth["frames"][0]["parts"] if key not in EXCLUDED_PARTS]
                moves = moving_parts(truth)  # once per clip: it reads every frame's ground truth
                for u in chosen.tolist():
                    if named := named_part(classes.unit_texts[u], clip_parts):
                        naming += 1
                        moving += bool(set(named) & moves)
            others = [u for c in (ranked[1], (top + len(labels) // 2) % len(labels))
                      for u in mask[c].nonzero().flatten().tolist() if not mask[top, u]]
            for m in measures:
                scores, bar, spread = evidence_bar(out, classes, model, m, top)
                marked = clears_bar(scores, bar, m)
                own[m].append(float(marked[mask[top]].float().mean()))
                ties[m].append(float(((scores[mask[top]] - bar).abs() < NEAR_TIE * spread).float().mean()))
                if others:
                    other[m].append(float(marked[others].float().mean()))
    print(f"{args.checkpoint}: {right} of {total} clips classified correctly (splits {', '.join(SPLIT_SEEDS)})\n")
    print("| measure | top action's concepts shown | clips with none shown | other likely actions' own "
          "concepts shown | top action's concepts in a near tie |\n|---|---:|---:|---:|---:|")
    for m in measures:
        print(f"| {m} | {100 * np.mean(own[m]):.0f}% | {sum(v == 0 for v in own[m])} of {len(own[m])} | "
              f"{100 * np.mean(other[m]):.0f}% | {100 * np.mean(ties[m]):.0f}% |")
    if selected:
        common = ", ".join(f"{text} ({n})" for text, n in wrong.most_common(5))
        print(f"\nASU's selected units ({model.cfg.su_top_k} per clip): {100 * np.mean(selected):.0f}% belong to the "
              f"true class; of the {sum(wrong.values())} that do not, the most selected: {common}. Of the "
              f"{naming} that name a body part, {100 * moving / max(naming, 1):.0f}% name one that moves in the clip")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
