"""ModelConfig: JSON round trip and clear errors for bad or unknown fields."""

import json

import pytest

from kgclip_core.errors import ConfigError
from kgclip_core.model.config import ModelConfig


def test_json_round_trip_rebuilds_the_same_config():
    cfg = ModelConfig(backbone="ViT-B-32", num_frames=16, num_regions=1, use_wti=False, weight_triplet=0.5)
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()


def test_unknown_key_is_named_in_the_error():
    data = ModelConfig().to_dict() | {"num_regoins": 4}
    with pytest.raises(ConfigError, match="num_regoins"):
        ModelConfig.from_dict(data)


@pytest.mark.parametrize(
    "fields, word",
    [
        ({"num_regions": 0}, "num_regions"),
        ({"temporal_kernel": 2}, "temporal_kernel"),
        ({"su_temperature": 0.0}, "su_temperature"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"use_video_text": False, "use_wti": False, "use_triplet": False}, "every score term is off"),
        ({"weight_wti": 0.0}, "weight_wti"),
        ({"training_free": True}, "training_free"),
    ],
)
def test_invalid_fields_raise_config_error(fields, word):
    with pytest.raises(ConfigError, match=word):
        ModelConfig(**fields)


def test_presets():
    plain = ModelConfig.plain_clip()
    assert not plain.needs_training and not plain.use_su
    free = ModelConfig.training_free_preset(backbone="ViT-B-32")
    assert free.training_free and free.use_su and not free.needs_training
    assert free.backbone == "ViT-B-32"
