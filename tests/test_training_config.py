"""Training configs: shipped files parse, unknown keys fail naming the key, overrides and bases apply."""

from pathlib import Path

import pytest

from kgclip_core.errors import ConfigError
from kgclip_core.training.config import config_from_dict, load_config, parse_opts

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.optim.lr > 0 and cfg.model.num_frames in (4, 8, 16)


def test_paper_defaults():
    cfg = config_from_dict({})
    o = cfg.optim
    assert (cfg.model.backbone, o.lr, o.new_module_lr_mult, o.weight_decay, o.warmup_epochs) == (
        "ViT-B-16", 1e-5, 10.0, 0.2, 5.0)


def test_unknown_key_in_file_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="'optim.learning_rate'.*known keys here: amp"):
        load_config(tmp_path / "c.yaml")


def test_unknown_key_in_opts_is_named(tmp_path):
    (tmp_path / "c.yaml").write_text("{}\n")
    with pytest.raises(ConfigError, match="'data.video_rot'"):
        load_config(tmp_path / "c.yaml", ["data.video_rot=/x"])
    with pytest.raises(ConfigError, match="'trainer'"):
        load_config(tmp_path / "c.yaml", ["trainer.lr=1"])
    with pytest.raises(ConfigError, match="use_wtti"):
        load_config(tmp_path / "c.yaml", ["model.use_wtti=false"])
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_opts(["optim.lr"])


def test_opts_and_base_chain(tmp_path):
    (tmp_path / "base.yaml").write_text("optim:\n  lr: 1e-5\n  epochs: 10\nmodel:\n  num_frames: 16\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\noptim:\n  epochs: 3\n")
    cfg = load_config(tmp_path / "child.yaml", ["optim.lr=2e-4", "optim.betas=[0.9, 0.999]", "run.resume=false"])
    assert cfg.optim.lr == 2e-4 and cfg.optim.epochs == 3 and cfg.model.num_frames == 16
    assert cfg.optim.betas == (0.9, 0.999) and cfg.run.resume is False
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="inherits from itself"):
        load_config(tmp_path / "loop.yaml")


def test_bad_values_fail_before_training():
    with pytest.raises(ConfigError, match="protocol.name"):
        config_from_dict({"protocol": {"name": "fewshot"}})
    with pytest.raises(ConfigError, match="shots"):
        config_from_dict({"protocol": {"name": "few_shot"}})
    with pytest.raises(ConfigError, match="optim.lr must be a number"):
        config_from_dict({"optim": {"lr": "fast"}})
    with pytest.raises(ConfigError, match="optim.amp"):
        config_from_dict({"optim": {"amp": "fp8"}})


def test_flip_and_train_text_switches():
    cfg = config_from_dict({})
    assert cfg.data.flip and not cfg.model.train_text
    cfg = load_config(CONFIGS[0], ["data.flip=false", "model.train_text=true"])
    assert cfg.data.flip is False and cfg.model.train_text is True
    with pytest.raises(ConfigError, match="data.flip"):
        config_from_dict({"data": {"flip": "sometimes"}})
