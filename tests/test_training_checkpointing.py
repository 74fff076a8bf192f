"""Checkpoints: atomic writes survive a full disk, other configs are refused, RNG and export round-trip."""

import errno
import random

import numpy as np
import pytest
import torch

from kgclip_core.errors import ConfigError, KGClipError
from kgclip_core.model import checkpoint as model_checkpoint
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import build_model
from kgclip_core.training import checkpointing
from kgclip_core.training.checkpointing import CheckpointManager, export_predictor, rng_state, set_rng_state
from kgclip_core.training.config import config_from_dict

LEARNING = config_from_dict({}).learning_fields()


def state(step: int) -> dict:
    return {"model": {"w": torch.full((3,), float(step))}, "step": step, "epoch": 0}


def test_save_and_load_last_and_best(tmp_path):
    mgr = CheckpointManager(tmp_path, LEARNING)
    assert mgr.load() is None
    mgr.save(state(1), is_best=True)
    mgr.save(state(2))
    assert mgr.load()["step"] == 2
    assert mgr.load(mgr.best)["step"] == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_full_disk_leaves_the_previous_checkpoint_valid(tmp_path, monkeypatch):
    mgr = CheckpointManager(tmp_path, LEARNING)
    mgr.save(state(1))

    def disk_full(obj, f):
        f.write(b"PK\x03\x04 half a zip")  # part of the file reaches the disk, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpointing.torch, "save", disk_full)
    with pytest.raises(KGClipError, match="disk full.*still valid"):
        mgr.save(state(2))
    monkeypatch.undo()
    assert mgr.load()["step"] == 1
    torch.testing.assert_close(mgr.load()["model"]["w"], torch.ones(3))
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoint_from_another_config_is_refused_naming_the_keys(tmp_path):
    CheckpointManager(tmp_path, LEARNING).save(state(1))
    other = config_from_dict({"optim": {"lr": 2e-5}, "model": {"num_frames": 16}}).learning_fields()
    with pytest.raises(ConfigError, match=r"different config.*model\.num_frames: 8 -> 16.*optim\.lr"):
        CheckpointManager(tmp_path, other).load()
    # Bookkeeping (output folder, workers, logging) may change between runs.
    same = config_from_dict({"run": {"output_dir": "elsewhere", "log_every": 3}, "data": {"num_workers": 1}})
    assert CheckpointManager(tmp_path, same.learning_fields()).load()["step"] == 1


def test_not_a_checkpoint_is_refused(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable training checkpoint"):
        CheckpointManager(tmp_path, LEARNING).load()


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    CheckpointManager(tmp_path, LEARNING).save({"rng": rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(CheckpointManager(tmp_path, LEARNING).load()["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_export_writes_a_predictor_checkpoint(tmp_path):
    cfg = ModelConfig(backbone="kgclip-tiny", pretrained=None, num_frames=2, num_regions=2, decoder_layers=1,
                      decoder_heads=2, triplet_layers=1, triplet_heads=2)
    torch.manual_seed(0)
    model = build_model(cfg, device="cpu")
    kg = {"nodes": [], "edges": []}
    export_predictor(model, tmp_path / "best_model", kg, ["run", "jump"])
    with torch.no_grad():
        next(model.mra.parameters()).add_(1.0)  # a later, better model replaces the export whole
    export_predictor(model, tmp_path / "best_model", kg, ["run", "jump"])
    loaded = model_checkpoint.load(tmp_path / "best_model")
    assert loaded.labels == ["run", "jump"] and loaded.config == cfg
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model"]


def test_a_crash_between_the_export_renames_leaves_a_loadable_model(tmp_path, monkeypatch):
    import os

    from kgclip_core.training import checkpointing

    cfg = ModelConfig(backbone="kgclip-tiny", pretrained=None, num_frames=2, num_regions=2, decoder_layers=1,
                      decoder_heads=2, triplet_layers=1, triplet_heads=2)
    torch.manual_seed(0)
    model = build_model(cfg, device="cpu")
    kg = {"nodes": [], "edges": []}
    target = tmp_path / "best_model"
    export_predictor(model, target, kg, ["run", "jump"])
    first = {k: v.clone() for k, v in model.state_dict().items()}
    real_replace, calls = os.replace, []

    def crash_on_the_second_rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies between "target -> old" and "tmp -> target"
        return real_replace(src, dst)

    monkeypatch.setattr(checkpointing.os, "replace", crash_on_the_second_rename)
    with torch.no_grad():
        next(model.mra.parameters()).add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        export_predictor(model, target, kg, ["run", "jump"])
    monkeypatch.setattr(checkpointing.os, "replace", real_replace)
    assert not target.exists() and (tmp_path / "best_model.old").is_dir()  # the documented fallback
    checkpointing.recover_export(target)  # what resume does first
    loaded = model_checkpoint.load(target)
    for key, value in first.items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value)
