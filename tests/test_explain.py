"""Explanations of a full KG-CLIP prediction (tiny CLIP, every head on) on real clips.

Covers ``explain.maps``, ``explain.overlay``, ``explain.figures`` and ``explain.graph``;
Integrated Gradients has its own file (``test_explain_attribution.py``).
"""

import matplotlib
import numpy as np
import pytest

from kgclip_core import explain
from kgclip_core.explain.graph import MATCH_MARK, prediction_graph
from kgclip_core.explain.maps import crop_box
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.kg.render import action_view
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import KGClipModel
from kgclip_core.predictor import Predictor, PredictorConfig

LABELS = "kinetics_tps24"
REGIONS = 4


@pytest.fixture(scope="module")
def predictor(make_full_predictor):
    return make_full_predictor(num_frames=8)


@pytest.fixture(scope="module")
def pred(predictor, real_clip):
    return predictor.predict(real_clip, labels=LABELS, top_k=5)


@pytest.fixture(scope="module")
def other_pred(predictor, shared_clips):
    """A second 320x240 UCF-101 clip: same frame size as ``pred``, different content."""
    clip = next(r["file"] for r in shared_clips if r["label"] == "PlayingGuitar")
    return predictor.predict(clip, labels=LABELS, top_k=5)


def _outside_crop(maps: np.ndarray) -> np.ndarray:
    top, left, side = crop_box(*maps.shape[-2:])
    outside = np.ones(maps.shape[-2:], dtype=bool)
    outside[top:top + side, left:left + side] = False
    return maps[..., outside]


# maps -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, count", [("regions", REGIONS), ("units", None)])
def test_maps_have_the_frames_size_sum_to_one_and_stay_in_the_crop(pred, kind, count):
    maps = explain.region_heatmaps(pred) if kind == "regions" else explain.unit_heatmaps(pred)
    t, h, w = pred.frames.shape[:3]
    assert h != w  # a 4:3 clip: the check below is about aspect, not a square
    assert maps.shape == (t, count or len(pred.units), h, w)
    assert maps.min() >= 0
    np.testing.assert_allclose(maps.sum(axis=(-2, -1)), 1.0, rtol=1e-5)
    assert np.all(_outside_crop(maps) == 0)  # the model never saw the sides of the frame


def test_evidence_maps_are_the_top_actions_concepts_on_the_frames(pred, predictor):
    """The "evidence" maps: one per concept of the predicted action, in the evidence's order,
    each the map of that concept's own text on these frames, named with shown or not."""
    texts = [e.text for e in pred.evidence]
    names = explain.heatmap_choices(pred, "evidence")
    assert texts and names[0] == "all concepts" and len(names) == len(texts) + 1
    assert all(n.startswith(e.text) and n.endswith("not shown)") != e.present for e, n in zip(pred.evidence, names[1:]))
    maps = np.stack([explain.heatmaps(pred, "evidence", i) for i in range(len(texts))], axis=1)
    t, h, w = pred.frames.shape[:3]
    assert maps.shape == (t, len(texts), h, w)
    np.testing.assert_allclose(maps.sum(axis=(-2, -1)), 1.0, rtol=1e-5)
    assert np.all(_outside_crop(maps) == 0)
    own = explain.text_heatmaps(predictor, pred, texts)  # each text mapped on its own, peak 1
    np.testing.assert_allclose(maps, own / own.sum(axis=(-2, -1), keepdims=True), rtol=1e-3, atol=1e-7)
    assert f'"{texts[1]}", a concept of the top action' in explain.heatmap_caption(pred, "evidence", 1)
    assert "evidence_maps" not in pred.to_dict()


def test_to_frame_places_the_grid_on_the_centre_square():
    grid = np.zeros((2, 2), dtype=np.float32)
    grid[0, 1] = 1.0  # top-right cell of the model's view
    out = explain.to_frame(grid, (90, 160))
    assert out.shape == (90, 160)
    top, left, side = crop_box(90, 160)
    assert (top, left, side) == (0, 35, 90)
    assert out[:, :left].max() == 0 and out[:, left + side:].max() == 0
    peak = np.unravel_index(out.argmax(), out.shape)
    assert peak[0] < 45 and peak[1] >= left + side // 2  # top half, right half of the square


def test_mean_map_is_the_mean_of_the_single_maps(pred):
    single = np.stack([explain.heatmaps(pred, "regions", r) for r in range(REGIONS)], axis=1)
    np.testing.assert_allclose(explain.heatmaps(pred, "regions"), single.mean(axis=1), atol=1e-6)
    assert explain.heatmap_choices(pred, "regions") == ["all regions", *(f"region {r}" for r in range(1, 5))]
    assert len(explain.heatmap_choices(pred, "units")) == len(pred.units) + 1
    with pytest.raises(ValueError):
        explain.heatmaps(pred, "pixels")


def test_maps_change_when_the_clip_changes(pred, other_pred):
    assert pred.frames.shape == other_pred.frames.shape
    for kind in explain.HEATMAP_KINDS:
        a, b = explain.heatmaps(pred, kind, 0), explain.heatmaps(other_pred, kind, 0)
        assert np.abs(a - b).max() > 0.01 * a.max(), kind


def test_training_free_prediction_has_unit_maps_only(tiny_backbone, real_clip):
    cfg = ModelConfig.training_free_preset(backbone="kgclip-tiny", pretrained=None)
    free = Predictor(KGClipModel(cfg, tiny_backbone), PredictorConfig(backbone=tiny_backbone.cfg))
    pred = free.predict(real_clip, labels=LABELS, top_k=3)
    assert explain.region_heatmaps(pred) is None and explain.heatmap_choices(pred, "regions") == []
    assert explain.heatmaps(pred, "units").shape == pred.frames.shape[:3]
    assert explain.alignment_heatmap(pred) is None


# overlay ----------------------------------------------------------------------------------


def test_overlay_blends_frame_and_colormap(pred):
    frame, heat = pred.frames[0], explain.heatmaps(pred, "regions")[0]
    np.testing.assert_array_equal(explain.overlay.overlay(frame, heat, alpha=0.0), frame)
    full = explain.overlay.overlay(frame, heat, alpha=1.0)
    peak = np.unravel_index(heat.argmax(), heat.shape)
    expected = np.round(np.array(matplotlib.colormaps[explain.COLORMAP](1.0)[:3]) * 255)
    np.testing.assert_array_equal(full[peak], expected)  # the map's maximum gets the colormap's top colour
    half = explain.overlay.overlay(frame, heat, alpha=0.5).astype(int)
    assert np.all(np.abs(half - (frame.astype(int) + full.astype(int)) / 2) <= 1)
    with pytest.raises(ValueError):
        explain.overlay.overlay(frame, heat[:-1])
    with pytest.raises(ValueError):
        explain.overlay.overlay(frame, heat, alpha=1.5)


def test_gallery_shows_the_raw_frame_the_overlay_and_a_colour_bar(pred):
    maps = explain.heatmaps(pred, "units")
    caption = explain.heatmap_caption(pred, "units", 0)
    gallery = explain.heatmap_gallery(pred, maps, alpha=0.4, caption=caption)
    assert len(gallery) == 8
    picture, text = gallery[0]
    h, w = pred.frames.shape[1:3]
    assert picture.shape[0] == h and picture.shape[1] > 2 * w  # frame, overlay, colour bar side by side
    np.testing.assert_array_equal(picture[:, :w], pred.frames[0])  # the raw frame first
    np.testing.assert_array_equal(picture[:, w + 6:2 * w + 6], explain.overlay.overlay(pred.frames[0], maps[0], 0.4))
    bar = picture[:, 2 * w + 12]  # the colour bar's first column: the colormap from the peak (top) to 0
    top, bottom = (np.round(np.array(matplotlib.colormaps[explain.COLORMAP](v)[:3]) * 255) for v in (1.0, 0.0))
    assert np.abs(bar[0] - top).max() <= 2 and np.abs(bar[-1] - bottom).max() <= 2
    assert text == f"frame {pred.frame_indices[0]} @ {pred.timestamps[0]:.2f}s\n{caption}"
    assert pred.units[0].text in caption
    plain = explain.heatmap_gallery(pred)
    np.testing.assert_array_equal(plain[3][0], pred.frames[3])
    fig = explain.heatmap_figure(pred, maps, title="units")
    assert len([ax for ax in fig.axes if ax.images]) == 8


def test_captions_say_what_each_map_shows(pred, tiny_backbone, real_clip):
    assert "region 2" in explain.heatmap_caption(pred, "regions", 1)
    assert "mean" in explain.heatmap_caption(pred, "regions") and "mean" in explain.heatmap_caption(pred, "units")
    cfg = ModelConfig.training_free_preset(backbone="kgclip-tiny", pretrained=None)
    free = Predictor(KGClipModel(cfg, tiny_backbone), PredictorConfig(backbone=tiny_backbone.cfg, num_frames=2))
    no_mra = free.predict(real_clip, labels=LABELS, top_k=1)
    note = explain.heatmap_caption(no_mra, "regions")
    assert "no multi-region attention" in note  # says so instead of showing nothing
    assert note in explain.heatmap_gallery(no_mra, None, caption=note)[0][1]


def test_attribution_note_explains_the_completeness_error():
    attr = explain.Attribution(label="<b>x</b>", class_index=0, maps=np.zeros((1, 2, 2)), delta=0.012, steps=16)
    note = explain.attribution_note(attr)
    assert "Completeness error 0.012" in note and "add up to" in note and "<b>" not in note


# figures ----------------------------------------------------------------------------------


def test_topk_bar_chart_best_on_top(pred):
    fig = explain.topk_bar_chart(pred)
    bar = fig.data[0]
    assert list(bar.y) == list(reversed(pred.labels))
    np.testing.assert_allclose(bar.x, [100 * s for s in reversed(pred.scores)])
    assert "RANDOM WEIGHTS" in fig.layout.title.text


def test_units_table_and_timeline(pred):
    table = explain.units_table(pred)
    assert list(table.columns) == explain.figures.UNIT_COLUMNS and len(table) == len(pred.units)
    assert list(table["unit"]) == [u.text for u in pred.units]
    first = pred.units[0]
    assert table["best frame"][0] == f"{pred.timestamps[int(np.argmax(first.frame_scores))]:.1f}s"
    fig = explain.unit_timeline(pred)
    np.testing.assert_allclose(np.array(fig.data[0].z), [u.frame_scores for u in pred.units])
    assert len(fig.data[0].x) == 8
    assert "cosine" in fig.data[0].colorbar.title.text and "cosine" in fig.layout.title.text
    # the numbers say what they are
    assert "cosine" in table.columns[2] and "usual" in table.columns[3] and "share" in table.columns[4]
    assert list(table[table.columns[3]]) == [round(u.rank_score, 4) for u in pred.units]


def test_alignment_heatmap_is_words_by_frames(pred):
    fig = explain.alignment_heatmap(pred)
    z = np.array(fig.data[0].z)
    assert z.shape == (len(pred.alignment.words), 8)
    np.testing.assert_allclose(z, pred.alignment.similarity, atol=1e-6)
    assert np.all(np.abs(z) <= 1 + 1e-5)  # cosines


def test_chart_text_from_users_is_escaped(pred):
    from dataclasses import replace

    hostile = replace(pred, labels=["<img src=x onerror=alert(1)>", *pred.labels[1:]])
    assert "<img" not in str(explain.topk_bar_chart(hostile).to_json())


# graph ------------------------------------------------------------------------------------


def test_prediction_graph_marks_the_matched_units(pred):
    from dataclasses import replace

    # Every other concept marked shown, whatever this random-weights model links: the view
    # must follow the evidence's marks, both ways.
    assert len(pred.evidence) >= 2
    pred = replace(pred, evidence=[replace(e, present=i % 2 == 0) for i, e in enumerate(pred.evidence)])
    kg = prediction_graph(pred)
    assert kg.graph.number_of_nodes() == len(pred.kg["nodes"])
    shown = {(d["type"], d["label"].split("  [")[0]): d["label"] for _, d in kg.graph.nodes(data=True)}
    for e in pred.evidence:  # the concepts the clip shows carry the mark and their evidence score
        nodes = [label for (kind, text), label in shown.items() if text == e.text and kind != "action"]
        assert (e.type, e.text) in shown and nodes, e  # a text that is two kinds of concept: both nodes
        assert all((f"{MATCH_MARK} {e.score:.2f}" in label) == e.present for label in nodes), e
    for e in pred.edges:  # the triplet encoder scored every movement of the top class
        assert f"kg {e.score:.2f}" in shown[("movement", e.tail)]
    html = explain.prediction_graph_html(pred)
    assert html.startswith("<iframe") and "vis.Network" in html


def test_action_markdown_escapes_user_labels():
    kg = KnowledgeGraph.for_label_set(["<img src=x onerror=alert(1)>", "playing guitar"])
    text = explain.action_markdown(action_view(kg, kg.actions[0]))
    assert "<img" not in text and "&lt;img" in text
    guitar = explain.action_markdown(action_view(KnowledgeGraph.for_label_set("ucf101"), "PlayingGuitar"))
    assert "Playing Guitar" in guitar and "**Body-part movements**" in guitar and "guitar" in guitar


def test_the_predictors_heatmaps_do_not_import_the_renderers():
    """A prediction imports the heatmap methods; matplotlib, plotly and pandas (seconds on a cold
    start) come only with the renderers, while every public name still resolves."""
    import subprocess
    import sys

    code = ("import sys\nimport kgclip_core.predictor\n"
            "print(sorted(m for m in ('matplotlib', 'plotly', 'pandas') if m in sys.modules))\n"
            "import kgclip_core.explain as e\nprint(all(getattr(e, n) is not None for n in e.__all__))\n"
            "print(sorted(m for m in ('matplotlib', 'plotly', 'pandas') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:3] == ["[]", "True", "['matplotlib', 'pandas', 'plotly']"]
