"""`kgclip train` / `kgclip eval` sub-commands, through their own argument parser."""

import argparse
import json
from pathlib import Path

import pytest
import torch
from _training_data import write_tiny_dataset

from kgclip_core.errors import ConfigError
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import build_model
from kgclip_core.training.checkpointing import export_predictor
from kgclip_core.training.cli import add_parser

TINY = Path(__file__).resolve().parents[1] / "configs" / "tiny_cpu.yaml"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_train_fails_on_an_unknown_key_before_anything_runs(tmp_path):
    args = parse("train", "--config", str(TINY), "--opts", "optim.learning_rate=1", f"run.output_dir={tmp_path / 'r'}")
    with pytest.raises(ConfigError, match="'optim.learning_rate'"):
        args.func(args)
    assert not (tmp_path / "r").exists()


def test_eval_a_checkpoint_directory(tmp_path, shared_clips, capsys):
    data = write_tiny_dataset(tmp_path / "data", shared_clips)
    cfg = ModelConfig(backbone="kgclip-tiny", pretrained=None, num_frames=2, num_regions=2, decoder_layers=1,
                      decoder_heads=2, triplet_layers=1, triplet_heads=2)
    torch.manual_seed(0)
    export_predictor(build_model(cfg, device="cpu"), tmp_path / "ckpt", {"nodes": [], "edges": []},
                     ["Biking", "Punch", "PlayingGuitar", "PushUps"])
    args = parse("eval", "--checkpoint", str(tmp_path / "ckpt"), "--list", data["val"], "--video-root", data["root"],
                 "--clips", "2", "--crops", "3", "--num-workers", "0", "--device", "cpu", "--json",
                 "--out", str(tmp_path / "report"))
    assert args.func(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["num_samples"] == 4 and 0.0 <= printed["top1"] <= printed["top5"] <= 1.0
    assert [row["class"] for row in printed["per_class"]] == ["Biking", "Punch", "PlayingGuitar", "PushUps"]
    assert json.loads((tmp_path / "report" / "val.json").read_text())["top1"] == printed["top1"]
    assert (tmp_path / "report" / "val_confusion.png").stat().st_size > 0
