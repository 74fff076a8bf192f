"""Tests of the foundation's pretraining: the loss, the collapse guard, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from kgclip_core.cli import main as kgclip_main
from kgclip_core.errors import ConfigError
from kgclip_core.synth.actions import get_action
from kgclip_core.synth.captions import build_corpus
from kgclip_core.synth.pretrain import (
    STATE_FILE, WEIGHTS_FILE, PretrainConfig, Pretrainer, PretrainError, contrastive_loss, mean_pairwise_cosine,
    region_loss,
)
from kgclip_core.synth.regions import movement_cells
from kgclip_core.synth.render import render_clip

TINY = dict(model="kgclip-tiny", corpus_size=8, num_frames=2, train_frames=2, batch_size=4, check_every=1)


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(8, seed=0, image_size=64, num_frames=2)


def test_contrastive_loss_is_clips_loss_with_distinct_keys_and_shares_targets_between_positives():
    torch.manual_seed(0)
    v, t = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    scale = torch.tensor(10.0)
    logits = scale * v @ t.T
    clip = 0.5 * (F.cross_entropy(logits, torch.arange(4)) + F.cross_entropy(logits.T, torch.arange(4)))
    assert torch.allclose(contrastive_loss(v, t, torch.arange(4), scale), clip)
    # Clips 0 and 1 are one composition: each row's target is split between them.
    targets = torch.tensor([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    expected = 0.5 * (-(targets * logits.log_softmax(1)).sum(1).mean() - (targets * logits.T.log_softmax(1)).sum(1).mean())
    assert torch.allclose(contrastive_loss(v, t, torch.tensor([7, 7, 1, 2]), scale), expected)


def test_mean_pairwise_cosine():
    assert mean_pairwise_cosine(torch.ones(5, 3)) == pytest.approx(1.0)
    assert mean_pairwise_cosine(torch.eye(4)) == pytest.approx(0.0)


def test_collapse_guard_stops_with_a_clear_message_and_writes_no_weights(tmp_path, corpus):
    trainer = Pretrainer(PretrainConfig(**TINY, steps=3, collapse_cosine=0.01, collapse_grace=0.5), tmp_path)
    with pytest.raises(PretrainError, match="collapsed"):
        trainer.run(corpus)
    assert not (tmp_path / WEIGHTS_FILE).exists()


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, corpus, monkeypatch):
    cfg = PretrainConfig(**TINY, steps=4, save_every=2)
    whole = Pretrainer(cfg, tmp_path / "whole")
    whole.run(corpus)

    real_batch = Pretrainer._batch

    def crash_at_step_3(self, *args):
        if self.step == 3:
            raise KeyboardInterrupt
        return real_batch(self, *args)

    monkeypatch.setattr(Pretrainer, "_batch", crash_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        Pretrainer(cfg, tmp_path / "cut").run(corpus)
    assert (tmp_path / "cut" / STATE_FILE).is_file() and not (tmp_path / "cut" / WEIGHTS_FILE).exists()
    monkeypatch.setattr(Pretrainer, "_batch", real_batch)
    resumed = Pretrainer(cfg, tmp_path / "cut")
    resumed.resume(tmp_path / "cut" / STATE_FILE)
    assert resumed.step == 2
    resumed.run(corpus)
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert not (tmp_path / "cut" / STATE_FILE).exists()  # a finished run leaves only its results


def _cli(args: list[str], capsys) -> tuple[int, str]:
    code = kgclip_main(["pretrain", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--corpus-size", "0"], "corpus_size"),
    (["--frames", "100000"], "num_frames"),
    (["--train-frames", "0"], "train_frames"),
    (["--render-size", "47"], "render_size"),
    (["--steps", "0"], "steps"),
    (["--lr", "nan"], "lr"),
])
def test_cli_refuses_bad_settings_in_one_line_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    code, err = _cli(["--out", str(out), *args], capsys)
    assert code == 2 and err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_cli_refuses_an_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, err = _cli(["--out", str(blocker / "sub"), "--steps", "1"], capsys)
    assert code == 2 and "Cannot write to the output folder" in err and err.count("\n") == 1


def test_cli_refuses_a_truncated_resume_state_and_keeps_the_weights(tmp_path, capsys, corpus):
    out = tmp_path / "shipped"
    cfg = PretrainConfig(**TINY, steps=2, save_every=1)
    trainer = Pretrainer(cfg, out)
    trainer.run(corpus)
    weights = (out / WEIGHTS_FILE).read_bytes()
    trainer._save_state()
    state = out / STATE_FILE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    code, err = _cli(["--out", str(out), "--resume", "--steps", "1"], capsys)
    assert code == 2 and "truncated" in err and err.count("\n") == 1
    assert (out / WEIGHTS_FILE).read_bytes() == weights
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tmp") == []


def test_resume_refuses_a_state_of_another_config(tmp_path, corpus):
    trainer = Pretrainer(PretrainConfig(**TINY, steps=2), tmp_path)
    trainer._save_state()
    other = Pretrainer(PretrainConfig(**{**TINY, "batch_size": 3}, steps=2), tmp_path)
    with pytest.raises(PretrainError, match="different config"):
        other.resume(Path(tmp_path) / STATE_FILE)


def test_region_loss_pools_the_patches_of_each_region():
    patches = torch.zeros(2, 4, 2)
    patches[0, 1] = torch.tensor([1.0, 0.0])  # region 0: patches 1 and 2 point to phrase 0 on average
    patches[0, 2] = torch.tensor([1.0, 0.2])
    patches[0, 3] = torch.tensor([0.0, 9.0])  # outside region 0: must not count
    patches[1, 0] = torch.tensor([0.0, 1.0])  # region 1: phrase 1
    cells = torch.tensor([[False, True, True, False], [True, False, False, False]])
    phrases = torch.eye(2)
    scale = torch.tensor(50.0)
    low = region_loss(patches, cells, torch.tensor([0, 1]), phrases, scale)
    high = region_loss(patches, cells, torch.tensor([1, 0]), phrases, scale)
    assert low < 0.01 < 10 < high
    region0 = F.normalize(torch.tensor([[1.0, 0.1]]), dim=-1)  # the mean of its two patches
    expected = F.cross_entropy(scale * region0 @ phrases.T, torch.tensor([0]))
    assert torch.allclose(region_loss(patches[:1], cells[:1], torch.tensor([0]), phrases, scale), expected)


def test_region_corpus_pairs_each_frame_s_moving_parts_with_their_phrases():
    corpus = build_corpus(4, seed=1, image_size=64, num_frames=3, grid=(8, 8))
    plain = build_corpus(4, seed=1, image_size=64, num_frames=3)
    assert torch.equal(corpus.frames, plain.frames) and plain.regions is None  # the same corpus, plus pairs
    assert len(corpus.regions) == len(corpus.region_cells) > 0 and corpus.region_cells.shape[1] == 64
    assert corpus.region_cells.any(1).all()  # every pair covers some patch
    for clip, frame, phrase in corpus.regions.tolist():
        words = set(corpus.phrases[phrase].split())
        assert any(words >= {m[0], m[2]} for m in corpus.actions[clip].movements()), corpus.phrases[phrase]
    # the cells are the patches of the part's box: a right hand waving above the shoulder is high up
    frames, truth = render_clip("wave right hand", seed=5, frames=[20])
    [(phrase, cells)] = [r for r in movement_cells(get_action("wave right hand"), truth["frames"][0], (64, 64),
                                                   64 / truth["size"][0], (8, 8)) if "hand" in r[0]]
    x0, y0, x1, y1 = truth["frames"][0]["parts"]["right hand"]["box"]
    rows, cols = cells.nonzero()
    scale = 8 / truth["size"][0]
    assert phrase == "right hand wave"
    assert rows.min() == int(y0 * scale) and cols.min() == int(x0 * scale)


def test_region_pretraining_runs_from_given_weights_and_lowers_its_loss(tmp_path):
    corpus = build_corpus(8, seed=0, image_size=64, num_frames=2, grid=(4, 4))  # kgclip-tiny: 4x4 patches
    base = Pretrainer(PretrainConfig(**TINY, steps=2), tmp_path / "base").run(corpus).weights
    cfg = PretrainConfig(**{**TINY, "batch_size": 8}, steps=30, lr=1e-3, region_weight=1.0, init_from=str(base))
    trainer = Pretrainer(cfg, tmp_path / "regions")
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert all(torch.equal(start[k], v) for k, v in load_file(base).items())  # started from the given weights
    trainer.run(corpus)
    log = [json.loads(line) for line in (tmp_path / "regions" / "pretrain_log.jsonl").read_text().splitlines()]
    assert log[-1]["region_loss"] < log[0]["region_loss"]
    with pytest.raises(PretrainError, match="patch grid"):
        Pretrainer(cfg, tmp_path / "no_pairs").run(build_corpus(8, seed=0, image_size=64, num_frames=2))


@pytest.mark.parametrize("overrides, message", [({"region_weight": -1.0}, "region_weight"),
                                                 ({"region_weight": float("nan")}, "region_weight"),
                                                 ({"init_from": "/nonexistent.safetensors"}, "init_from")])
def test_region_settings_are_checked_before_any_work(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        Pretrainer(PretrainConfig(**TINY, **overrides), tmp_path)


def test_init_from_refuses_weights_of_another_model(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(PretrainError, match="Cannot start from"):
        Pretrainer(PretrainConfig(**TINY, init_from=str(other)), tmp_path / "out")
