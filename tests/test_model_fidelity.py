"""The fidelity switches (ours vs the papers' behaviour, docs/MODEL.md): each changes the loss
or the score exactly as documented, on small hand-made tensors."""

import pytest
import torch
import torch.nn.functional as F

from kgclip_core.errors import ConfigError
from kgclip_core.model import ModelConfig
from kgclip_core.model.decoder import VideoDecoder
from kgclip_core.model.losses import compute_losses, direct_contrast, edge_positives
from kgclip_core.model.su_select import select_units
from kgclip_core.model.triplet import TripletEncoder
from test_model_kgclip import class_inputs, images, tiny_model

EDGES = [("clap", "action-movement", "hands meet"), ("clap", "action-movement", "arms swing"),
         ("wave", "action-movement", "arms swing"), ("wave", "video-movement", "hand up")]


def test_edge_positives_hard_is_the_diagonal_and_soft_adds_every_true_pair():
    torch.testing.assert_close(edge_positives(EDGES, soft=False), torch.eye(4, dtype=torch.bool))
    soft = edge_positives(EDGES, soft=True)
    expected = torch.tensor([
        [1, 1, 1, 0],  # clap -> hands meet, clap -> arms swing: edges (tails 1 and 2 are alike)
        [1, 1, 1, 0],
        [0, 1, 1, 0],  # (wave, hands meet) is not an edge
        [0, 0, 0, 1],  # another relation never counts
    ], dtype=torch.bool)
    torch.testing.assert_close(soft, expected)


def test_soft_edge_targets_change_the_edge_loss_only_where_edges_share_an_end():
    labels = torch.tensor([0, 2])
    x = images(2, 2)
    model = tiny_model()
    for inputs, differs in ((class_inputs(), False), (class_inputs(), True)):
        if differs:  # shares its tail with jump's edge: soft targets count (ride bike, legs bend)
            inputs.triples.append(("ride bike", "action-movement", "legs bend"))
        classes = model.encode_classes(inputs)
        out = model(x, classes)
        losses = {}
        for targets in ("hard", "soft"):
            model.cfg.edge_targets = targets
            losses[targets] = compute_losses(model, out, classes, labels)
        for name in ("classification", "triplet_video_action", "triplet_video_movement"):
            torch.testing.assert_close(losses["hard"][name], losses["soft"][name])
        edges = (losses["hard"]["triplet_edges"], losses["soft"]["triplet_edges"])
        assert differs != torch.allclose(*edges)


def test_direct_loss_is_the_plain_cosine_contrasts_weighted_by_lam_coef():
    model = tiny_model(direct_loss_weight=0.7)
    classes = model.encode_classes(class_inputs())
    labels = torch.tensor([1, 2])
    out = model(images(2, 2), classes)
    losses = compute_losses(model, out, classes, labels)
    # By hand: video-action CE, video-movement soft CE, edges head-tail symmetric CE.
    scale, v = out.logit_scale, F.normalize(out.video_emb, dim=-1)
    va = F.cross_entropy(scale * v @ classes.class_emb.T, labels)
    pos = classes.class_unit_mask[labels].float()
    vm = -(pos / pos.sum(1, keepdim=True) * F.log_softmax(scale * v @ classes.unit_emb.T, 1)).sum(1).mean()
    sim = scale * classes.triple_heads @ classes.triple_tails.T
    eye = torch.arange(sim.shape[0])
    am = 0.5 * (F.cross_entropy(sim, eye) + F.cross_entropy(sim.T, eye))
    torch.testing.assert_close(losses["direct"], (va + vm + am) / 3)
    torch.testing.assert_close(direct_contrast(out, classes, labels, soft_edges=False), losses["direct"])
    others = sum(v for k, v in losses.items() if k not in ("direct", "total"))
    torch.testing.assert_close(losses["total"], others + 0.7 * losses["direct"])
    off = tiny_model()
    off_classes = off.encode_classes(class_inputs())
    assert "direct" not in compute_losses(off, off(images(2, 2), off_classes), off_classes, labels)


def test_averaged_triplet_inference_matches_kg_clip_formula():
    torch.manual_seed(0)
    enc = TripletEncoder(8, layers=1, heads=2).eval()
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.2 * torch.randn_like(p))
    videos, classes = torch.randn(3, 8), torch.randn(4, 8)
    fwd, inv = enc.averaged_scores(videos, "video-action", classes)
    # By hand, as in KG-CLIP's inference: encode every pair, average the head representation
    # over classes and the tail one over videos, cosine.
    rows_h, rows_t, inv_h, inv_t = [], [], [], []
    for v in videos:
        h, t = enc.encode(v.expand(4, -1), torch.full((4,), 0), classes)
        ih, it = enc.encode(classes, torch.full((4,), 3), v.expand(4, -1))
        rows_h.append(h), rows_t.append(t), inv_h.append(ih), inv_t.append(it)
    expect_f = F.normalize(torch.stack(rows_h).mean(1), dim=-1) @ F.normalize(torch.stack(rows_t).mean(0), dim=-1).T
    expect_i = F.normalize(torch.stack(inv_h).mean(1), dim=-1) @ F.normalize(torch.stack(inv_t).mean(0), dim=-1).T
    torch.testing.assert_close(fwd, expect_f)
    torch.testing.assert_close(inv, expect_i)
    # The batch matters: the first video's scores change when the others do.
    alone, _ = enc.averaged_scores(videos[:1], "video-action", classes)
    assert not torch.allclose(alone, fwd[:1])


def test_averaged_inference_is_used_at_eval_only():
    model = tiny_model(triplet_inference="averaged")
    classes = model.encode_classes(class_inputs())
    pair = tiny_model()
    x = images(2, 2)
    with torch.no_grad():
        model.train()
        pair.train()
        torch.testing.assert_close(model(x, classes).logits, pair(x, classes).logits)
        model.eval()
        pair.eval()
        averaged, paired = model(x, classes).terms["triplet"], pair(x, classes).terms["triplet"]
    fwd, inv = model.triplet.averaged_scores(model(x, classes).video_emb, "video-action", classes.class_emb)
    torch.testing.assert_close(averaged, 0.5 * (fwd + inv))
    assert not torch.allclose(averaged, paired)


def test_per_frame_selection_keeps_each_frames_own_best_units():
    # 2 frames, 3 units along the axes: frame 0 shows unit 0, frame 1 shows unit 2.
    units = torch.eye(3)
    visual = torch.tensor([[[[1.0, 0.1, 0.0]], [[0.0, 0.2, 1.0]]]])  # [B=1, T=2, V=1, D=3]
    video = select_units(visual, units, top_k=1, temperature=0.1)
    per_frame = select_units(visual, units, top_k=1, temperature=0.1, per_frame=True)
    assert video.frame_indices is None
    assert video.per_frame()[0].tolist() == [[[video.indices[0, 0].item()]] * 2]
    assert per_frame.frame_indices.tolist() == [[[0], [2]]]
    torch.testing.assert_close(per_frame.frame_weights, torch.ones(1, 2, 1))
    torch.testing.assert_close(per_frame.indices, video.indices)  # the video's ranking is unchanged


def test_decoder_reads_each_frames_own_units():
    torch.manual_seed(0)
    dec = VideoDecoder(16, layers=1, heads=4, mlp_ratio=2.0, kernel=1)  # kernel 1: no temporal mixing
    with torch.no_grad():
        for p in dec.parameters():
            p.add_(0.1 * torch.randn_like(p))
    frames, units = torch.randn(1, 2, 16), torch.randn(1, 2, 3, 16)
    weights = torch.full((1, 2, 3), 1 / 3)
    out = dec(frames, None, units, weights)
    changed = units.clone()
    changed[0, 1] = 5 * torch.randn(3, 16)  # only frame 1's units (a shift would vanish in the LayerNorm)
    out2 = dec(frames, None, changed, weights)
    torch.testing.assert_close(out[0, 0], out2[0, 0])
    assert not torch.allclose(out[0, 1], out2[0, 1])
    # The same units for every frame equal the video-level call.
    same = units[:, :1].expand(-1, 2, -1, -1)
    torch.testing.assert_close(dec(frames, None, same, weights), dec(frames, None, units[:, 0], weights[:, 0]))


def test_per_frame_selection_changes_the_full_models_scores():
    x = images(2, 4)
    logits = {}
    for mode in ("video", "frame"):
        model = tiny_model(seed=2, su_selection=mode, su_top_k=2)
        with torch.no_grad():
            for p in model.decoder.parameters():  # a trained decoder: its output reads the units
                p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        classes = model.encode_classes(class_inputs())
        with torch.no_grad():
            logits[mode] = model.eval()(x, classes).logits
    assert not torch.allclose(logits["video"], logits["frame"])


@pytest.mark.parametrize("field,value", [("su_selection", "clip"), ("edge_targets", "fuzzy"),
                                         ("triplet_inference", "mean"), ("direct_loss_weight", -1.0)])
def test_switches_refuse_unknown_values(field, value):
    with pytest.raises(ConfigError, match=field):
        ModelConfig(**{field: value})
