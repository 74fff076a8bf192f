"""Heatmap methods (``kgclip_core.heatmaps``: ``methods``, ``attention``, ``gradient``) on a tiny open_clip ViT,
through the Predictor and on real clips; the shipped models on freshly rendered clips are in
``test_explain_pointing.py``."""

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kgclip_core import explain, heatmaps
from kgclip_core.errors import ConfigError, LabelError
from kgclip_core.heatmaps.attention import LastBlockQKV, blocks_of, run_block, run_blocks
from kgclip_core.explain.maps import crop_box
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import KGClipModel
from kgclip_core.predictor import Predictor, PredictorConfig

TEXTS = ["right hand wave", "left leg kick"]


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(0)
    return torch.randn(3, 3, 64, 64)


@pytest.fixture(scope="module")
def texts(tiny_backbone):
    return F.normalize(tiny_backbone.encode_text(TEXTS), dim=-1)


def test_run_block_equals_open_clips_block(tiny_backbone, images):
    visual = tiny_backbone.model.visual
    with torch.no_grad():
        tokens = visual._embeds(images)
        ours = tokens
        for block in blocks_of(visual):
            ours = run_block(block, ours).out
        np.testing.assert_allclose(ours, run_blocks(visual, tokens, list(blocks_of(visual))), atol=1e-5)


@pytest.fixture(scope="module")
def concepts(tiny_backbone):
    """A small label set's concepts, for ``surgery``."""
    return F.normalize(tiny_backbone.encode_text([*TEXTS, "squat", "clap hands", "right arm raise"]), dim=-1)


@pytest.mark.parametrize("method", list(heatmaps.HEATMAP_METHODS))
def test_every_method_gives_maps_in_zero_one_with_a_peak_of_one(tiny_backbone, images, texts, concepts, method):
    maps = heatmaps.text_maps(tiny_backbone, images, texts, method, concepts=concepts)
    side = 64 if method == "integrated-gradients" else tiny_backbone.grid_size[0]
    assert maps.shape == (3, 2, side, side)
    assert torch.isfinite(maps).all() and maps.min() >= 0
    np.testing.assert_allclose(maps.flatten(2).amax(-1), 1.0, atol=1e-5)
    assert not torch.allclose(maps[:, 0], maps[:, 1])  # another text, another map


def test_surgery_takes_out_what_every_concept_shares(tiny_backbone):
    """A patch that looks like what all concepts share (the background) outshines the part a
    concept names in the plain cosine; after the surgery the part's patch is the peak."""
    grid = tiny_backbone.grid_size
    dim = tiny_backbone.embed_dim
    basis = torch.eye(dim)
    shared, parts = basis[0], basis[1:5]
    concepts = F.normalize(2 * shared + parts, dim=-1)  # four concepts, each mostly the shared part
    patches = 0.01 * torch.randn(1, grid[0] * grid[1], dim, generator=torch.Generator().manual_seed(0))
    patches[0, 3] += shared  # background
    patches[0, 7] += parts[0]  # the part concept 0 names
    images = torch.zeros(1, 3, 64, 64)  # unused: the patches are given
    plain = heatmaps.text_maps(tiny_backbone, images, concepts[:1], "cosine", patches=patches)
    surgery = heatmaps.text_maps(tiny_backbone, images, concepts[:1], "surgery", patches=patches, concepts=concepts)
    assert int(plain.flatten().argmax()) == 3
    assert int(surgery.flatten().argmax()) == 7
    np.testing.assert_allclose(float(surgery.flatten()[7]), 1.0)


def test_surgery_needs_the_label_sets_concepts(tiny_backbone, images, texts):
    with pytest.raises(ValueError, match="concept"):
        heatmaps.text_maps(tiny_backbone, images, texts, "surgery")


def test_texts_per_image_equal_shared_texts(tiny_backbone, images, texts):
    shared = heatmaps.text_maps(tiny_backbone, images, texts, "legrad")
    per_image = heatmaps.text_maps(tiny_backbone, images, texts.expand(3, -1, -1), "legrad")
    torch.testing.assert_close(shared, per_image)


def test_attention_path_reuses_the_recorded_forward_pass(tiny_backbone, images, texts):
    visual = tiny_backbone.model.visual
    with torch.no_grad():
        fused = tiny_backbone.encode_frames(images)
        with LastBlockQKV(visual) as recorded:
            written_out = tiny_backbone.encode_frames(images)
    # the recorded pass computes the last block's attention from explicit q, k, v: same output
    for a, b in zip(fused, written_out):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    q, k, v = recorded.qkv
    heads = blocks_of(visual)[-1].attn.num_heads
    assert q.shape[:3] == (3, heads, 1 + tiny_backbone.grid_size[0] * tiny_backbone.grid_size[1])
    assert q.shape == k.shape == v.shape
    for method in heatmaps.ATTENTION_PATH:
        torch.testing.assert_close(heatmaps.text_maps(tiny_backbone, images, texts, method, recorded),
                                   heatmaps.text_maps(tiny_backbone, images, texts, method))
    # the block is open_clip's own again after the context: a later pass records nothing
    assert "attention" not in vars(blocks_of(visual)[-1])
    tiny_backbone.encode_frames(images)
    assert recorded.qkv[0].shape[0] == 3


def test_recording_keeps_to_its_own_thread(tiny_backbone, images):
    """A pass on another thread while a recorder is open is neither recorded nor changed."""
    visual = tiny_backbone.model.visual
    with torch.no_grad():
        expected = tiny_backbone.encode_frames(images[:1])
        other = {}
        with LastBlockQKV(visual) as recorded:
            thread = threading.Thread(target=lambda: other.update(out=tiny_backbone.encode_frames(images[:1])))
            thread.start()
            thread.join()
            tiny_backbone.encode_frames(images)
    torch.testing.assert_close(other["out"], expected)
    assert recorded.qkv[0].shape[0] == 3


def test_attention_path_differs_from_plain_cosine(tiny_backbone, images, texts):
    plain = heatmaps.text_maps(tiny_backbone, images, texts, "cosine")
    assert not torch.allclose(plain, heatmaps.text_maps(tiny_backbone, images, texts, "clearclip"))


def test_unknown_method_is_refused(tiny_backbone, images, texts):
    with pytest.raises(ConfigError, match="clearclip"):
        heatmaps.text_maps(tiny_backbone, images, texts, "gradcam")


@pytest.fixture(scope="module")
def free_predictor(tiny_backbone):
    cfg = ModelConfig.training_free_preset(backbone="kgclip-tiny", pretrained=None)
    return Predictor(KGClipModel(cfg, tiny_backbone), PredictorConfig(backbone=tiny_backbone.cfg, num_frames=4))


@pytest.mark.parametrize("method", ["cosine", "surgery", heatmaps.DEFAULT_HEATMAP_METHOD, "grad-eclip"])
def test_predictor_makes_unit_maps_with_its_method(free_predictor, real_clip, method):
    free_predictor.cfg.heatmap_method = method
    try:
        pred = free_predictor.predict(real_clip, labels=["biking", "playing guitar", "archery"], top_k=2)
    finally:
        free_predictor.cfg.heatmap_method = heatmaps.DEFAULT_HEATMAP_METHOD
    assert pred.heatmap_method == method
    assert pred.unit_maps.shape == (4, len(pred.units), *free_predictor.backbone.grid_size)
    np.testing.assert_allclose(pred.unit_maps.sum(axis=(-2, -1)), 1.0, rtol=1e-5)
    assert heatmaps.HEATMAP_METHODS[method].split(":")[0] in explain.heatmap_caption(pred, "units")
    # The top action's concepts are mapped in the same pass by the single-pass methods only.
    if method in heatmaps.SINGLE_PASS:
        assert pred.evidence_maps.shape == (4, len(pred.evidence), *free_predictor.backbone.grid_size)
        np.testing.assert_allclose(pred.evidence_maps.sum(axis=(-2, -1)), 1.0, rtol=1e-5)
    else:
        assert pred.evidence and pred.evidence_maps is None and explain.heatmap_choices(pred, "evidence") == []
        assert "gradient" in explain.heatmap_caption(pred, "evidence")


@pytest.mark.parametrize("method", heatmaps.PATCH_COSINE)
def test_patch_cosine_maps_read_the_predictions_own_forward_pass(free_predictor, real_clip, method, monkeypatch):
    """The maps of the patch-cosine methods cost no second pass of the image tower."""
    calls = []
    encode = free_predictor.backbone.encode_frames
    monkeypatch.setattr(free_predictor.backbone, "encode_frames",
                        lambda images: calls.append(len(images)) or encode(images))
    free_predictor.cfg.heatmap_method = method
    try:
        pred = free_predictor.predict(real_clip, labels=["biking", "playing guitar", "archery"], top_k=2)
    finally:
        free_predictor.cfg.heatmap_method = heatmaps.DEFAULT_HEATMAP_METHOD
    assert pred.evidence_maps is not None and calls == [4]


def test_text_heatmaps_keep_the_frames_aspect_and_range(free_predictor, real_clip):
    labels = free_predictor.resolve_labels(["biking", "playing guitar", "archery"])
    pred = free_predictor.predict(real_clip, labels=labels, top_k=2)
    with pytest.raises(LabelError, match="labels="):  # a typed set is not known by its name
        explain.text_heatmaps(free_predictor, pred, TEXTS, "surgery")
    # A grid map's peak cell lands on the frame nearly whole; a one-pixel peak of integrated
    # gradients is shared with its neighbours by the bilinear upsampling.
    for method, lowest_peak in ((heatmaps.DEFAULT_HEATMAP_METHOD, 0.95), ("surgery", 0.95), ("integrated-gradients", 0.5)):
        maps = explain.text_heatmaps(free_predictor, pred, TEXTS, method, labels=labels)
        t, h, w = pred.frames.shape[:3]
        assert h != w and maps.shape == (t, 2, h, w)
        assert maps.min() >= 0 and maps.max() <= 1 + 1e-6
        assert maps.reshape(t, 2, -1).max(-1).min() >= lowest_peak
        top, left, side = crop_box(h, w)
        assert maps[..., :left].max() == 0 and maps[..., left + side:].max() == 0


def test_cli_predict_takes_a_heatmap_method(tmp_path, capsys, monkeypatch):
    import json
    from pathlib import Path

    from kgclip_core.cli import main

    monkeypatch.setenv("KGCLIP_CACHE_DIR", str(tmp_path))
    checkpoint = Path(__file__).resolve().parents[1] / "checkpoints" / "synthetic"
    clip = Path(__file__).resolve().parents[1] / "assets" / "examples" / "wave_right_hand.mp4"
    assert main(["predict", str(clip), "--checkpoint", str(checkpoint), "--heatmap", "grad-eclip", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["heatmap_method"] == "grad-eclip"
    assert main(["predict", str(clip), "--checkpoint", str(checkpoint), "--heatmap", "gradcam"]) == 2
    err = capsys.readouterr().err
    assert "gradcam" in err and all(m in err for m in heatmaps.HEATMAP_METHODS)


def test_cli_help_lists_every_method(capsys):
    from kgclip_core.cli import main

    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    import re

    text = re.sub(r"-\s*\n\s*", "-", capsys.readouterr().out)  # argparse wraps lines at hyphens too
    assert all(m in text for m in heatmaps.HEATMAP_METHODS)
