"""The Predictor facade end to end on real clips with the tiny CLIP."""

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from _videos import cover_art_mp3, one_frame_gif, phone_video, ramp_video
from kgclip_core.backbone import BackboneConfig
from kgclip_core import heatmaps
from kgclip_core.errors import ConfigError, KGClipError, LabelError, VideoError
from kgclip_core.model import checkpoint
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import KGClipModel
from kgclip_core.predictor import Predictor, PredictorConfig

@pytest.fixture(scope="module")
def predictor(tiny_backbone):
    """Training-free scoring on the tiny CLIP, as the app runs a pretrained one."""
    cfg = ModelConfig.training_free_preset(backbone="kgclip-tiny", pretrained=None)
    return Predictor(KGClipModel(cfg, tiny_backbone), PredictorConfig(backbone=tiny_backbone.cfg, num_frames=8))


@pytest.fixture(scope="module")
def full_predictor(make_full_predictor):
    """Every KG-CLIP head on: MRA, SU selection, decoder, WTI and the triplet encoder."""
    return make_full_predictor()


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


@pytest.mark.parametrize("top_k", [0, -1, 2.5])
def test_top_k_below_one_is_an_error_not_the_default(predictor, real_clip, top_k):
    with pytest.raises(LabelError, match="top_k"):
        predictor.predict(real_clip, labels=["run", "jump"], top_k=top_k)


def test_saved_and_reloaded_weights_give_identical_scores(predictor, real_clip, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in predictor.backbone.model.state_dict().items()}, str(path))
    reloaded = Predictor.from_config(PredictorConfig(backbone=BackboneConfig("kgclip-tiny", str(path), device="cpu")))
    assert not reloaded.backbone.random_weights and not reloaded.predict(real_clip, labels="hmdb51").warnings
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


def test_clip_is_refused_before_the_labels_are_embedded(predictor, real_clip, tmp_path, monkeypatch):
    def embed(*args, **kwargs):
        raise AssertionError("the label set was embedded")

    monkeypatch.setattr(predictor.model, "encode_classes", embed)
    labels = [f"custom action {i}" for i in range(20)]
    empty = tmp_path / "empty.mp4"
    empty.touch()
    for bad in (empty, cover_art_mp3(tmp_path / "song.mp3"), one_frame_gif(tmp_path / "still.gif")):
        with pytest.raises(VideoError, match="empty|still picture"):
            predictor.predict(bad, labels=labels)
    with pytest.raises(AssertionError, match="embedded"):  # a readable clip does get there
        predictor.predict(real_clip, labels=labels)


def test_prediction_is_upright_and_says_what_was_cut(predictor, tmp_path):
    path, _ = phone_video(tmp_path / "phone.mp4", 90, frames=8)
    pred = predictor.predict(path, labels=["run", "jump"])
    assert pred.frames.shape == (8, round(160 * 256 / 96), 256, 3) and pred.video.rotation == 90
    red, green = pred.frames[..., 0].astype(int), pred.frames[..., 1].astype(int)
    assert red[:, :, 128:].mean() > red[:, :, :128].mean() + 100  # red grows rightwards
    assert green[:, 213:].mean() > green[:, :213].mean() + 100  # green grows downwards
    assert len(pred.warnings) == 1  # only the random-weights one
    pred = predictor.predict(ramp_video(tmp_path / "long.mp4", 8192, 16, frames=8), labels=["run", "jump"])
    assert pred.frames.shape == (8, 256, 1024, 3) and pred.video.crop == (64, 16)
    assert pred.warnings[1] == pred.video.crop_note and "8192x16" in pred.warnings[1]
    assert pred.to_dict()["video"]["crop"] == (64, 16)


def test_training_free_explains_with_semantic_units(predictor, real_clip):
    pred = predictor.predict(real_clip, labels="ucf101", top_k=3)
    assert set(pred.term_scores) == {"video_text", "su"}
    k = len(pred.units)
    assert k == predictor.model.cfg.su_top_k
    assert pred.unit_maps.shape == (8, k, *pred.grid)
    np.testing.assert_allclose(pred.unit_maps.sum(axis=(-1, -2)), 1.0, rtol=1e-4)
    assert all(len(u.frame_scores) == 8 for u in pred.units)
    assert [u.score for u in pred.units] == sorted((u.score for u in pred.units), reverse=True)
    assert [u.rank_score for u in pred.units] == [u.score for u in pred.units]  # no hubness correction
    assert pred.region_maps is None and pred.alignment is None  # no trained heads in this mode
    top_action = [n for n in pred.kg["nodes"] if n["type"] == "action"]
    assert [n["name"] for n in top_action] == [pred.class_names[0]]


def test_full_model_explanations(full_predictor, real_clip):
    pred = full_predictor.predict(real_clip, labels="ucf101", top_k=5)
    assert set(pred.term_scores) == {"video_text", "wti", "triplet"}
    assert pred.region_maps.shape == (8, 4, *pred.grid)
    np.testing.assert_allclose(pred.region_maps.sum(axis=(-1, -2)), 1.0, rtol=1e-4)
    words = pred.alignment.words
    assert " ".join(words).replace(" ", "") == pred.labels[0].lower().replace(" ", "")
    assert pred.alignment.similarity.shape == (len(words), 8)
    assert pred.edges and all(e.head == pred.labels[0] and e.relation == "action-movement" for e in pred.edges)
    json.dumps(pred.to_dict())


def test_checkpoint_round_trip_through_predictor(full_predictor, real_clip, tmp_path):
    from kgclip_core.kg.graph import KnowledgeGraph

    kg = KnowledgeGraph.for_label_set("hmdb51")
    checkpoint.save(full_predictor.model, tmp_path / "ckpt", kg=kg.to_json(), labels=list(kg.actions))
    loaded = Predictor.from_checkpoint(tmp_path / "ckpt", device="cpu")
    a = full_predictor.predict(real_clip, labels="hmdb51", top_k=5)
    b = loaded.predict(real_clip, top_k=5)  # the checkpoint's own label set
    assert a.labels == b.labels and a.class_names == b.class_names
    torch.testing.assert_close(torch.tensor(a.scores), torch.tensor(b.scores))
    assert not b.random_weights


def test_a_checkpoint_names_its_own_heatmap_method(full_predictor, tmp_path):
    model = full_predictor.model
    checkpoint.save(model, tmp_path / "plain")  # none named: the Predictor's default
    assert Predictor.from_checkpoint(tmp_path / "plain", device="cpu").cfg.heatmap_method == heatmaps.DEFAULT_HEATMAP_METHOD
    checkpoint.save(model, tmp_path / "own", heatmap_method="cosine")
    assert json.loads((tmp_path / "own" / "config.json").read_text())["heatmap_method"] == "cosine"
    assert Predictor.from_checkpoint(tmp_path / "own", device="cpu").cfg.heatmap_method == "cosine"
    chosen = Predictor.from_checkpoint(tmp_path / "own", device="cpu", heatmap_method="legrad")
    assert chosen.cfg.heatmap_method == "legrad"  # the caller's choice wins
    checkpoint.save(model, tmp_path / "bad", heatmap_method="<b>glow</b>")
    with pytest.raises(ConfigError, match="Unknown heatmap method"):  # at load, not at the first prediction
        Predictor.from_checkpoint(tmp_path / "bad", device="cpu")


def test_all_errors_are_one_type():
    assert issubclass(VideoError, KGClipError) and issubclass(LabelError, KGClipError)


def test_a_label_set_is_embedded_once_while_other_callers_wait_and_see_its_progress(predictor, monkeypatch):
    labels = predictor.resolve_labels(["archery", "surfing", "knitting", "juggling"])
    started, release = threading.Event(), threading.Event()
    calls, results, seen = [], [], []
    embed = predictor.model.encode_classes

    def slow(inputs, progress=None):
        calls.append(1)
        progress(1, 10)
        started.set()
        release.wait(10)
        return embed(inputs, progress=progress)

    monkeypatch.setattr(predictor.model, "encode_classes", slow)
    first = threading.Thread(target=lambda: results.append(predictor.classes(labels)))
    first.start()
    assert started.wait(10)
    assert predictor.embedding_progress(labels) == (1, 10)
    second = threading.Thread(target=lambda: results.append(predictor.classes(labels, lambda d, t: seen.append((d, t)))))
    second.start()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    first.join(10)
    second.join(10)
    assert len(calls) == 1 and len(results) == 2 and results[0] is results[1]
    assert seen[0] == (1, 10)  # the waiting caller follows the embedding it waits for
    assert predictor.embedding_progress(labels) is None


def test_a_background_embedding_gives_way_to_a_request(predictor, monkeypatch):
    started, release = threading.Event(), threading.Event()
    order = []

    def fake(inputs, progress=None):
        if inputs.names == ["request one", "request two"]:  # the request's label set
            started.set()
            release.wait(10)
            order.append("request")
            return "request"
        progress(1, 10)  # between batches: pauses while the request embeds
        order.append("background")
        return "background"

    # (the label sets are this test's own: the fixture's predictor keeps what they return)
    monkeypatch.setattr(predictor.model, "encode_classes", fake)
    request = threading.Thread(target=predictor.classes, args=(predictor.resolve_labels(["request one", "request two"]),))
    request.start()
    assert started.wait(10)
    background = threading.Thread(target=predictor.classes, args=(predictor.resolve_labels(["warm one", "warm two"]),),
                                  kwargs={"background": True})
    background.start()
    time.sleep(0.3)
    assert order == [] and background.is_alive()
    release.set()
    request.join(10)
    background.join(10)
    assert order == ["request", "background"]


def test_predict_reports_the_texts_it_embeds(predictor, real_clip):
    seen = []
    predictor.predict(real_clip, labels=["rowing", "fencing"], progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] > 0
    seen.clear()
    predictor.predict(real_clip, labels=["rowing", "fencing"], progress=lambda d, t: seen.append((d, t)))
    assert seen == []  # embedded once, then kept


def test_default_triplet_shortlist_keeps_the_demo_checkpoints_predictions():
    from kgclip_core.predictor import DEFAULT_TRIPLET_SHORTLIST
    from kgclip_core.synth import SynthConfig, render_clip
    from kgclip_core.video import sample_indices

    directory = Path(__file__).resolve().parents[1] / "checkpoints" / "synthetic"
    default = Predictor.from_checkpoint(directory, device="cpu")
    full = Predictor.from_checkpoint(directory, device="cpu", triplet_shortlist=0)
    labels = default.resolve_labels(None)
    assert default.model.cfg.triplet_shortlist == DEFAULT_TRIPLET_SHORTLIST < len(labels)
    assert full.model.cfg.triplet_shortlist == 0
    # Fresh clips (seed 7, as docs/TESTBED.md), only the frames the predictor samples.
    indices = sample_indices(SynthConfig().num_frames, default.cfg.num_frames)[0]
    clips = [default.backbone.preprocess(render_clip(action, 7, frames=indices)[0])[None] for action in labels.classes]
    top1 = {}
    for name, p in (("default", default), ("full", full)):
        _, classes = p.classes(labels)
        with torch.no_grad():
            top1[name] = [int(p.model.score(p.model.encode_video(x), classes).logits[0].argmax()) for x in clips]
    assert top1["default"] == top1["full"]
