"""The concept detector (``kgclip_core.model.concept_detector``): fitting, calibration, the file."""

import json

import pytest
import torch
from safetensors.torch import save_file

from kgclip_core.errors import ConfigError
from kgclip_core.model.concept_detector import (FEATURES, ConceptDetector, concept_features, feature_width,
                                                fit_detector, platt)


def _data(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames whose first two directions say whether concepts "a" and "b" show."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, 2, generator=g) < 0.4).float()
    features = torch.randn(n, 16, generator=g) * 0.3
    features[:, :2] += 2 * labels
    return features, labels


def test_a_fitted_detector_tells_present_from_absent_on_new_frames():
    x, y = _data()
    detector = fit_detector(x, y, ["a", "b"])
    test_x, test_y = _data(seed=1)
    logits = detector.frame_logits(test_x)
    assert ((logits > 0) == test_y.bool()).float().mean() > 0.95


def test_the_features_see_each_frame_its_change_its_patches_and_the_whole_clip():
    g = torch.Generator().manual_seed(0)
    frames, patches = torch.randn(6, 8, generator=g), torch.randn(6, 2 * 4, 8, generator=g)
    features = concept_features(frames, patches, (2, 4))
    assert features.shape == (6, feature_width(8))
    own, clip = features[:, :64], features[:, 64:]
    torch.testing.assert_close(own[:, :8], torch.nn.functional.normalize(frames, dim=-1))
    torch.testing.assert_close(clip, own.amax(0, keepdim=True).expand(6, -1))  # every frame sees the clip's maximum
    still = concept_features(frames[:1].expand(6, -1), patches[:1].expand(6, -1, -1), (2, 4))
    torch.testing.assert_close(still[:, 8:24], torch.zeros(6, 16))  # a clip that does not change shows no change
    torch.testing.assert_close(still[:, 40:64], torch.zeros(6, 24))  # nor do its patches


def test_the_patch_change_tells_the_left_columns_from_the_right():
    patches = torch.zeros(3, 2 * 4, 8)
    patches[..., 0] = 1.0  # every token the same unit vector...
    patches[1, [0, 4], 1] = 1.0  # ...but in the middle frame the first column (rows 0 and 1) turns
    features = concept_features(torch.ones(3, 8), patches, (2, 4))
    left, right = features[:, 48:56], features[:, 56:64]
    assert left.abs().sum() > 0 and right.abs().sum() == 0


def test_the_fit_is_reproducible_from_its_seed_and_leaves_the_callers_random_state():
    x, y = _data()
    state = torch.random.get_rng_state()
    a, b = fit_detector(x, y, ["a", "b"], epochs=2), fit_detector(x, y, ["a", "b"], epochs=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.testing.assert_close(a.frame_logits(x), b.frame_logits(x), rtol=0, atol=0)
    assert not torch.equal(fit_detector(x, y, ["a", "b"], epochs=2, seed=1).weight, a.weight)


def test_platt_scaling_recovers_a_known_calibration():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(20_000, generator=g) * 2
    truth = (torch.rand(20_000, generator=g) < torch.sigmoid(1.5 * scores - 0.5)).float()
    slope, offset = platt(scores, truth)
    assert slope == pytest.approx(1.5, abs=0.1) and offset == pytest.approx(-0.5, abs=0.1)


def test_the_file_round_trips_and_a_foreign_file_is_refused(tmp_path):
    x, y = _data()
    detector = fit_detector(x, y, ["right hand wave", "leg"])
    detector.slope, detector.offset, detector.unsure_below = 2.0, -1.0, 0.3
    loaded = ConceptDetector.load(detector.save(tmp_path / "concepts.safetensors"))
    assert loaded.texts == ["right hand wave", "leg"] and (loaded.slope, loaded.offset, loaded.unsure_below) == (2.0, -1.0, 0.3)
    torch.testing.assert_close(loaded.probabilities(x[:8]), detector.probabilities(x[:8]))
    assert loaded.covers(["leg"]) and not loaded.covers(["leg", "arm"])
    save_file({"weight": torch.zeros(2, 2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ConfigError, match="not a concept detector"):
        ConceptDetector.load(tmp_path / "other.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(ConfigError):
        ConceptDetector.load(tmp_path / "broken.safetensors")
    # A header that declares a huge weight is refused from the header, before any tensor is read.
    header = json.dumps({"__metadata__": {"format": "kgclip-concept-detector", "features": FEATURES,
                                          "texts": json.dumps(["a"] * 100_000), "calibration": "{}"},
                         **{k: {"dtype": "F32", "shape": shape, "data_offsets": [0, 4]} for k, shape in
                            (("mean", [64]), ("std", [64]), ("hidden_weight", [64, 8]), ("hidden_bias", [8]),
                             ("weight", [8, 100_000]), ("bias", [100_000]))}})
    (tmp_path / "huge.safetensors").write_bytes(len(header).to_bytes(8, "little") + header.encode() + b"\x00" * 4)
    with pytest.raises(ConfigError, match="unexpected shape"):
        ConceptDetector.load(tmp_path / "huge.safetensors")
    # The first, linear detector (no hidden layer) of these features is refused, told to train again.
    save_file({"mean": torch.zeros(4), "std": torch.ones(4), "weight": torch.zeros(4, 1), "bias": torch.zeros(1)},
              str(tmp_path / "linear.safetensors"), metadata={"format": "kgclip-concept-detector",
                                                               "features": FEATURES, "texts": '["a"]',
                                                               "calibration": "{}"})
    with pytest.raises(ConfigError, match="other layers.*train it again"):
        ConceptDetector.load(tmp_path / "linear.safetensors")
