"""The Predictor facade end to end on real clips with the tiny CLIP."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from kgclip_core.backbone import BackboneConfig
from kgclip_core.errors import KGClipError, LabelError, VideoError
from kgclip_core.predictor import Predictor, PredictorConfig


@pytest.fixture(scope="module")
def predictor(tiny_backbone):
    return Predictor(tiny_backbone, PredictorConfig(backbone=tiny_backbone.cfg, num_frames=8))


def test_predict_real_clip(predictor, real_clip):
    pred = predictor.predict(real_clip, labels="ucf101", top_k=5)
    assert len(pred.labels) == len(pred.scores) == 5
    assert pred.scores == sorted(pred.scores, reverse=True) and 0 < sum(pred.scores) <= 1 + 1e-6
    assert pred.label_set == "ucf101" and set(pred.labels) <= set(predictor_labels("ucf101"))
    assert pred.frames.shape[0] == 8 and pred.frames.dtype == np.uint8 and pred.frames.shape[-1] == 3
    assert len(pred.frame_indices) == 8 and np.all(np.diff(pred.timestamps) > 0)
    assert pred.random_weights and "RANDOM" in pred.warnings[0]
    json.dumps(pred.to_dict())  # serialisable for the CLI and the API


def predictor_labels(name):
    from kgclip_core.labels import load_label_set

    return load_label_set(name).display_names


def test_scores_follow_the_class_embeddings(predictor, real_clip):
    # The winning class must be the one whose prompt embedding is closest to the video.
    pred = predictor.predict(real_clip, labels=["archery", "surfing", "knitting"], top_k=3)
    assert sorted(pred.labels) == ["archery", "knitting", "surfing"]
    assert abs(sum(pred.scores) - 1) < 1e-5


def test_top_k_larger_than_label_set(predictor, real_clip):
    assert len(predictor.predict(real_clip, labels=["run", "jump"], top_k=10).labels) == 2


def test_saved_and_reloaded_weights_give_identical_scores(predictor, real_clip, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in predictor.backbone.model.state_dict().items()}, str(path))
    reloaded = Predictor.from_config(PredictorConfig(backbone=BackboneConfig("kgclip-tiny", str(path), device="cpu")))
    assert not reloaded.backbone.random_weights
    a = predictor.predict(real_clip, labels="hmdb51", top_k=5)
    b = reloaded.predict(real_clip, labels="hmdb51", top_k=5)
    assert a.labels == b.labels
    torch.testing.assert_close(torch.tensor(a.scores), torch.tensor(b.scores))


@pytest.mark.parametrize("labels, error", [
    ("kinetics-9000", LabelError), ([], LabelError), (["run", "run"], LabelError), ("", LabelError),
])
def test_bad_labels(predictor, real_clip, labels, error):
    with pytest.raises(error):
        predictor.predict(real_clip, labels=labels)


def test_bad_videos(predictor, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    for path in [tmp_path / "missing.mp4", empty, text, tmp_path]:
        with pytest.raises(VideoError):
            predictor.predict(path, labels="ucf101")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4", "notes.mp4"]


def test_all_errors_are_one_type():
    assert issubclass(VideoError, KGClipError) and issubclass(LabelError, KGClipError)
