"""Checkpoints: identical outputs after a round trip, config checks, and no code on load."""

import json
import logging
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


def test_a_checkpoint_is_not_announced_as_random_weights(saved, caplog):
    # open_clip builds the architecture without weights and warns it is "initialized randomly":
    # not so for a checkpoint, whose weights are loaded next. Where weights are random it says so.
    with caplog.at_level(logging.INFO):
        checkpoint.load(saved[1])
    assert not [r for r in caplog.records if "random" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        tiny_model(seed=1)
    assert any("initialized randomly" in r.getMessage() for r in caplog.records)


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


def _edit_config(path, edit) -> None:
    meta = json.loads((path / "config.json").read_text())
    edit(meta)
    (path / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("field, value, word", [
    ("su_temperature", float("nan"), "su_temperature"),  # json.dumps writes NaN, json.loads reads it
    ("num_frames", 100_000, "num_frames"),
    ("num_regions", 10**9, "num_regions"),
    ("decoder_layers", 100_000, "decoder_layers"),
    ("use_mra", "yes", "use_mra"),
    ("num_frames", 8.5, "num_frames"),
    ("backbone", ["ViT-B-32"], "backbone"),
])
def test_config_values_are_type_and_range_checked_before_any_allocation(saved, field, value, word):
    _, path = saved
    _edit_config(path, lambda meta: meta["model"].__setitem__(field, value))
    with pytest.raises(ConfigError, match=word):
        checkpoint.load(path)


@pytest.mark.parametrize("labels", ["jump", [1, 2], ["x" * 201], ["ok"] * 10_001])
def test_labels_must_be_a_bounded_list_of_names(saved, labels):
    _, path = saved
    _edit_config(path, lambda meta: meta.__setitem__("labels", labels))
    with pytest.raises(ConfigError, match="labels"):
        checkpoint.load(path)


@pytest.mark.parametrize("name", ["config.json", "kg.json"])
def test_deeply_nested_json_is_one_clear_error(saved, name):
    _, path = saved
    (path / name).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        checkpoint.load(path)


def test_a_kg_of_the_wrong_shape_is_refused_when_used(saved):
    from kgclip_core.kg.graph import KnowledgeGraph

    _, path = saved
    for bad in ({"nodes": 3, "edges": []}, {"nodes": [{"id": "a", "type": "action", "label": {"x": 1}}], "edges": []},
                {"nodes": [], "edges": "abc"}, {"nodes": [{"id": "a", "type": "body_part", "label": "a"}],
                                                "edges": [{"source": "a"}]}):
        with pytest.raises(ConfigError):
            KnowledgeGraph.from_json(bad)
    (path / "kg.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not a knowledge graph"):
        checkpoint.load(path)


def test_non_finite_weights_are_refused(saved):
    from safetensors.torch import load_file, save_file

    _, path = saved
    state = load_file(str(path / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], float("nan"))
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(WeightsError, match="non-finite"):
        checkpoint.load(path)
