"""Tests of the foundation's pretraining: the loss, the collapse guard, resume, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from kgclip_core.cli import main as kgclip_main
from kgclip_core.synth.captions import build_corpus
from kgclip_core.synth.pretrain import (
    STATE_FILE, WEIGHTS_FILE, PretrainConfig, Pretrainer, PretrainError, contrastive_loss, mean_pairwise_cosine,
)

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
