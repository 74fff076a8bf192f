"""Checkpoints: identical outputs after a round trip, config checks, and no code on load."""

import json
import pickle

import pytest
import torch

from kgclip_core.errors import ConfigError, WeightsError
from kgclip_core.model import ModelConfig, checkpoint
from test_model_kgclip import class_inputs, images, tiny_model

KG = {"nodes": [{"id": "jump", "type": "action", "label": "jump"}], "edges": []}


@pytest.fixture
def saved(tmp_path):
    model = tiny_model(seed=4)
    with torch.no_grad():  # move every head away from its initialisation
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    checkpoint.save(model, tmp_path / "ckpt", kg=KG, labels=class_inputs().names)
    return model.eval(), tmp_path / "ckpt"


def test_round_trip_gives_identical_outputs(saved):
    model, path = saved
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "kg.json", "model.safetensors"]
    loaded = checkpoint.load(path)
    assert loaded.config == model.cfg
    assert loaded.kg == KG and loaded.labels == class_inputs().names
    x = images(2, 3)
    with torch.no_grad():
        a = model.score(model.encode_video(x), model.encode_classes(class_inputs()))
        b = loaded.model.score(loaded.model.encode_video(x), loaded.model.encode_classes(class_inputs()))
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.region_maps, b.region_maps)
    assert torch.equal(a.edge_scores, b.edge_scores)


def test_a_different_expected_config_is_refused(saved):
    _, path = saved
    with pytest.raises(ConfigError, match="num_regions"):
        checkpoint.load(path, expected=ModelConfig(**{**saved[0].cfg.to_dict(), "num_regions": 2}))


def test_weights_that_do_not_fit_the_config_are_refused(saved):
    _, path = saved
    meta = json.loads((path / "config.json").read_text())
    meta["model"]["num_regions"] = 2
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="does not match"):
        checkpoint.load(path)


def test_unknown_config_key_is_refused(saved):
    _, path = saved
    meta = json.loads((path / "config.json").read_text())
    meta["model"]["use_magic"] = True
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="use_magic"):
        checkpoint.load(path)


class Exploit:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_planted_as_weights_runs_nothing(saved, tmp_path, writer):
    _, path = saved
    marker = tmp_path / "pwned"
    weights = path / "model.safetensors"
    if writer == "pickle":
        weights.write_bytes(pickle.dumps(Exploit(marker)))
    else:
        torch.save({"w": Exploit(marker)}, weights)
    with pytest.raises(WeightsError, match="safetensors"):
        checkpoint.load(path)
    assert not marker.exists()


def test_missing_pieces_say_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="config.json is missing"):
        checkpoint.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        checkpoint.load(tmp_path)
