"""The trainer on CPU with the tiny model and four real clips: learning, exact resume, DDP, eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _training_data import write_tiny_dataset

from kgclip_core.model import checkpoint as model_checkpoint
from kgclip_core.training import trainer as trainer_mod
from kgclip_core.training.checkpointing import CheckpointManager
from kgclip_core.training.config import load_config
from kgclip_core.training.evaluate import EvalOptions, evaluate_checkpoint
from kgclip_core.training.trainer import param_groups, train, warmup_cosine

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny_cpu.yaml"
EPOCHS, STEPS_PER_EPOCH = 3, 2  # 4 clips, batch 2


class Killed(Exception):
    """Stands for the process dying right after a checkpoint was written."""


def tiny_opts(data: dict, out: Path, *extra: str) -> list[str]:
    return [
        f"data.train_list={data['train']}", f"data.val_list={data['val']}", f"data.video_root={data['root']}",
        f"data.labels={data['labels']}", f"run.output_dir={out}", f"optim.epochs={EPOCHS}",
        "optim.lr=1e-3", "run.save_every_steps=1", *extra,
    ]


def log_records(out: Path, kind: str) -> list[dict]:
    """The records of one kind (train, eval, data) of a run's JSON-lines log."""
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r for r in records if r["kind"] == kind]


def train_losses(out: Path) -> dict[int, float]:
    """step -> total loss (a later record of a step wins)."""
    return {r["step"]: r["loss"] for r in log_records(out, "train")}


@pytest.fixture(scope="module")
def data(tmp_path_factory, shared_clips):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny-data"), shared_clips)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data):
    """An uninterrupted run: 3 epochs of 2 steps."""
    out = tmp_path_factory.mktemp("full")
    result = train(load_config(TINY, tiny_opts(data, out)))
    return out, result


def test_loss_goes_down(full_run):
    out, result = full_run
    losses = train_losses(out)
    assert sorted(losses) == list(range(1, EPOCHS * STEPS_PER_EPOCH + 1)) and result.steps == 6
    first, last = [losses[s] for s in (1, 2)], [losses[s] for s in (5, 6)]
    assert sum(last) < sum(first) * 0.9, losses


def test_run_writes_logs_checkpoints_and_a_loadable_best_model(full_run, data):
    out, result = full_run
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "checkpoints" / "best.pt").is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "eval" / f"epoch_{EPOCHS}" / "val_confusion.png").is_file()
    ckpt = model_checkpoint.load(out / "best_model")
    assert ckpt.labels == ["Biking", "Punch", "PlayingGuitar", "PushUps"]
    # `kgclip eval` on the exported model reproduces the epoch evaluation that selected it.
    best = max(e["val_top1"] for e in log_records(out, "eval"))
    metrics = evaluate_checkpoint(out / "best_model", data["val"],
                                  EvalOptions(video_root=data["root"], num_workers=0, device="cpu", out_dir=str(out / "r")))
    assert metrics.num_samples == 4 and metrics.top1 == pytest.approx(best) == result.best_metric
    assert (out / "r" / "val.json").is_file()


def test_killed_run_resumes_exactly(full_run, data, tmp_path, monkeypatch):
    full_out, _ = full_run
    out = tmp_path / "killed"
    cfg = load_config(TINY, tiny_opts(data, out))
    save = CheckpointManager.save

    def save_then_die(self, state, is_best=False):
        save(self, state, is_best)
        if state["step"] == 3:  # mid-epoch: the first step of epoch 2 of 3
            raise Killed

    monkeypatch.setattr(CheckpointManager, "save", save_then_die)
    with pytest.raises(Killed):
        train(cfg)
    assert sorted(train_losses(out)) == [1, 2, 3]
    monkeypatch.setattr(CheckpointManager, "save", save)
    result = train(cfg)
    assert result.steps == EPOCHS * STEPS_PER_EPOCH
    expected, got = train_losses(full_out), train_losses(out)
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-7)
    a = torch.load(full_out / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-7)


def test_two_process_gloo_matches_one_process(full_run, data, tmp_path):
    """torchrun, 2 processes x batch 1 == the uninterrupted 1-process run with batch 2."""
    full_out, _ = full_run
    out = tmp_path / "ddp"
    opts = tiny_opts(data, out, "optim.batch_size=1", "run.save_every_steps=0")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "kgclip_core.cli", "train", "--config", str(TINY), "--opts", *opts]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected, got = train_losses(full_out), train_losses(out)
    assert sorted(got) == sorted(expected)
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
    # Evaluation is sharded over the ranks and gathered: every video is scored exactly once.
    ddp_evals, evals = log_records(out, "eval"), log_records(full_out, "eval")
    assert [e["val_num_samples"] for e in ddp_evals] == [4] * EPOCHS
    assert [e["val_top1"] for e in ddp_evals] == [e["val_top1"] for e in evals]


def test_corrupt_video_is_skipped_and_counted(tmp_path, shared_clips):
    data = write_tiny_dataset(tmp_path / "data", shared_clips, corrupt=2)
    out = tmp_path / "run"
    opts = tiny_opts(data, out, "optim.epochs=1", "data.val_list=", "optim.batch_size=1")
    result = train(load_config(TINY, opts))
    assert result.steps == 6  # 6 listed, batch 1: the epoch runs through, 2 of its batches are empty
    assert [r["skipped_videos"] for r in log_records(out, "data")] == [2]
    assert len(log_records(out, "train")) == 4  # only the steps that had a readable video learn


def test_param_groups_give_new_modules_ten_times_the_lr(tmp_path, data):
    cfg = load_config(TINY, tiny_opts(data, tmp_path))
    model = trainer_mod.build_model(cfg.model, device="cpu")
    trainer_mod.configure_trainable(model, cfg.optim)
    groups = {g["name"]: g for g in param_groups(model, cfg.optim)}
    assert groups["new"]["lr"] == pytest.approx(10 * groups["backbone"]["lr"])
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0 and groups["new"]["weight_decay"] == cfg.optim.weight_decay
    trained = {id(p) for g in groups.values() for p in g["params"]}
    assert id(model.backbone.model.token_embedding.weight) not in trained  # the text tower is frozen
    assert id(model.backbone.model.visual.conv1.weight) in trained


def test_warmup_then_cosine():
    f = warmup_cosine(warmup_steps=4, total_steps=12)
    assert [f(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f(8) == pytest.approx(0.5) and f(12) == pytest.approx(0.0)
    assert all(f(s) >= f(s + 1) for s in range(4, 12))


def test_frozen_backbone_and_gradient_checkpointing(tmp_path, data):
    frozen = load_config(TINY, tiny_opts(data, tmp_path, "optim.freeze_backbone=true"))
    model = trainer_mod.build_model(frozen.model, device="cpu")
    trainer_mod.configure_trainable(model, frozen.optim)
    assert {g["name"] for g in param_groups(model, frozen.optim)} == {"new", "new_no_decay"}

    cfg = load_config(TINY, tiny_opts(data, tmp_path, "optim.grad_checkpointing=true"))
    model = trainer_mod.build_model(cfg.model, device="cpu")
    trainer_mod.configure_trainable(model, cfg.optim)
    assert model.backbone.model.visual.transformer.grad_checkpointing
    model.encode_video(torch.randn(2, cfg.model.num_frames, 3, 64, 64)).frames.sum().backward()
    assert model.backbone.model.visual.conv1.weight.grad.abs().sum() > 0  # recomputed blocks backpropagate


def test_train_text_trains_the_text_tower_and_flip_can_be_turned_off(tmp_path, data):
    cfg = load_config(TINY, tiny_opts(data, tmp_path / "run", "optim.epochs=1", "model.train_text=true",
                                      "data.flip=false"))
    trainer = trainer_mod.Trainer(cfg)
    clip = trainer.model.backbone.model
    trained = {id(p) for p in trainer.params}
    assert id(clip.token_embedding.weight) in trained and id(clip.text_projection) in trained
    assert trainer.train_set.transform.flip_p == 0.0
    before = clip.text_projection.detach().clone()
    before_classes = trainer.train_classes.class_emb.clone()
    result = trainer.fit()
    assert result.steps == STEPS_PER_EPOCH
    assert not torch.equal(clip.text_projection, before)
    # evaluation embedded the classes again with the trained text tower
    assert not torch.equal(trainer.train_classes.class_emb, before_classes)
    assert not trainer.train_classes.class_emb.requires_grad

    default = trainer_mod.Trainer(load_config(TINY, tiny_opts(data, tmp_path / "default")))
    assert default.train_set.transform.flip_p > 0
    assert id(default.model.backbone.model.token_embedding.weight) not in {id(p) for p in default.params}
