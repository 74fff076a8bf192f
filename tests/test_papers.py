"""The papers' grid (experiments/papers): its controls and statistics do what the report says,
and the demo checkpoint it ships recognises fresh clips."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.papers.setup import FOUNDATION, VARIANTS, GridRun, Setting
from experiments.papers.stats import paired_bootstrap
from kgclip_core.class_inputs import class_inputs, shuffled_knowledge
from kgclip_core.errors import ConfigError
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.labels import load_label_set
from kgclip_core.predictor import Predictor
from kgclip_core.synth import SYNTHETIC, SynthConfig, render_clip, write_video
from kgclip_core.synth.dataset import clip_seed, slug
from kgclip_core.video import sample_indices

REPO = Path(__file__).resolve().parents[1]
FRESH_SEED = 11  # neither the grid's splits (0, 1000, 2000) nor the shipped examples' (7)
SELECTION_MIN = 0.55  # measured on these fresh clips: 67% (48 of 48 right); 70.4% on the test split


def _inputs():
    labels = load_label_set("synthetic")
    return class_inputs(labels, KnowledgeGraph.for_label_set(labels), "description")


def test_shuffled_kg_gives_every_class_another_classes_knowledge():
    real = _inputs()
    shuffled = shuffled_knowledge(real, seed=3)
    assert shuffled.names == real.names and shuffled.prompts == real.prompts
    own = [frozenset(u) for u in real.class_units]
    got = [frozenset(u) for u in shuffled.class_units]
    assert Counter(got) == Counter(own)  # the same unit lists, redistributed
    moved = [g != o for g, o in zip(got, own)]
    assert sum(moved) >= len(own) - 1  # a derangement (two classes may share identical lists)
    # Each class's edges are the donor's edges, renamed: the edge tails follow the unit lists.
    for c, name in enumerate(real.names):
        donor = real.class_units.index(shuffled.class_units[c])
        tails = sorted(t for h, _, t in shuffled.triples if h == name)
        assert tails == sorted(t for h, _, t in real.triples if h == real.names[donor])
    assert len(shuffled.triples) == len(real.triples)
    assert shuffled_knowledge(real, seed=3).class_units == shuffled.class_units  # fixed by the seed
    assert shuffled_knowledge(real, seed=4).class_units != shuffled.class_units
    one = class_inputs(load_label_set(["wave right hand"]), KnowledgeGraph.for_label_set(load_label_set("synthetic")))
    with pytest.raises(ConfigError):
        shuffled_knowledge(one, seed=0)


def test_paired_bootstrap_centres_on_the_difference_and_covers_zero_for_noise():
    rng = np.random.default_rng(0)
    a = {s: rng.integers(0, 2, 200).tolist() for s in range(5)}
    same = paired_bootstrap(a, a)
    assert same == (0.0, 0.0, 0.0)
    better = {s: [1] * 200 for s in range(5)}
    d, lo, hi = paired_bootstrap(better, a)
    assert lo <= d <= hi and lo > 0
    assert d == pytest.approx(100 * (1 - np.mean([np.mean(v) for v in a.values()])))
    noise = {s: rng.integers(0, 2, 200).tolist() for s in range(5)}
    d, lo, hi = paired_bootstrap(noise, a)
    assert lo < 0 < hi
    assert paired_bootstrap(a, {9: a[0]}) is None  # no shared seed


def test_grid_runs_share_everything_but_the_variant():
    runs = [GridRun(v, Setting("K=2", 2), seed=1) for v in VARIANTS]
    specs = [r.spec() for r in runs]
    assert len({r.key for r in runs}) == len(runs)
    for spec in specs:
        assert spec.model["pretrained"] == str(FOUNDATION) and spec.model["class_text"] == "description"
        assert (spec.shots, spec.seed, spec.steps, spec.optim.lr) == (2, 1, specs[0].steps, specs[0].optim.lr)
        assert spec.optim.new_module_lr_mult == 10.0 and spec.optim.weight_decay == 0.2
    shuffled = [s for s in specs if s.shuffle_kg]
    assert [s.variant for s in shuffled] == ["full, shuffled KG"]
    papers = GridRun("full KG-CLIP", Setting("K=2", 2), 1, papers=True).spec().model
    assert (papers["edge_targets"], papers["su_selection"], papers["direct_loss_weight"]) == ("soft", "frame", 1.0)


@pytest.fixture(scope="module")
def demo() -> Predictor:
    return Predictor.from_checkpoint(REPO / "checkpoints" / "synthetic", device="cpu")


def test_demo_checkpoint_is_small_and_fine_tuned_from_the_foundation(demo):
    size = sum(f.stat().st_size for f in (REPO / "checkpoints" / "synthetic").iterdir())
    assert size <= 25 * 2**20
    cfg = demo.model.cfg
    assert cfg.backbone == "kgclip-synth" and cfg.class_text == "description"
    assert cfg.use_mra and cfg.use_su and cfg.use_decoder and cfg.use_wti and cfg.use_triplet


def test_demo_checkpoint_recognises_fresh_clips(demo):
    with tempfile.TemporaryDirectory() as tmp:
        right = 0
        for action in SYNTHETIC:
            frames, truth = render_clip(action, clip_seed(FRESH_SEED, action.name, 0))
            path = Path(tmp) / f"{slug(action.name)}.mp4"
            write_video(path, frames, truth["fps"])
            right += demo.predict(path).class_names[0] == action.name
    assert right >= 0.9 * len(SYNTHETIC), f"{right}/{len(SYNTHETIC)} fresh clips"


def test_demo_checkpoints_selected_units_mostly_belong_to_the_true_class(demo):
    """Fresh clips the demo checkpoint gets right: most of the units it selects belong to the true
    class. Its hubness correction is the development split's choice, none since the foundation's
    region stage (the raw ranking selected 70.5% of the true class's units there, any correction
    fewer; docs/TESTBED.md), so the checkpoint carries none."""
    model = demo.model
    assert model.cfg.su_hub_correction == 0 and model.hub is None
    labels = demo.resolve_labels(None)
    _, classes = demo.classes(labels)
    indices = sample_indices(SynthConfig().num_frames, demo.cfg.num_frames)[0]
    hits = []
    for seed in (21, 22):
        for truth, action in enumerate(labels.classes):
            with torch.no_grad():
                out = model.score(model.encode_video(demo.backbone.preprocess(
                    render_clip(action, seed, frames=indices)[0])[None]), classes, explain=False)
            if int(out.logits[0].argmax()) == truth:
                hits += classes.class_unit_mask[truth][out.su.indices[0]].tolist()
    assert len(hits) >= 0.9 * 2 * len(labels.classes) * model.cfg.su_top_k  # nearly every clip right
    assert sum(hits) / len(hits) > SELECTION_MIN, sum(hits) / len(hits)
