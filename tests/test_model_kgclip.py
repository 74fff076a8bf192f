"""KGClipModel on the tiny open_clip backbone: shapes, plain-CLIP equivalence, gradients,
determinism, training-free scoring and padded frames."""

import pytest
import torch
import torch.nn.functional as F

from kgclip_core.errors import LabelError
from kgclip_core.model import ClassInputs, KGClipModel, ModelConfig, build_model
from kgclip_core.model.losses import compute_losses
from kgclip_core.text_cache import TextEmbeddingCache

TINY = {"backbone": "kgclip-tiny", "pretrained": None, "decoder_heads": 4, "triplet_heads": 4}


def tiny_model(seed: int = 0, **overrides) -> KGClipModel:
    """A fresh tiny model (random open_clip weights), the same for the same seed."""
    torch.manual_seed(seed)
    return build_model(ModelConfig(**{**TINY, **overrides}), device="cpu", use_text_cache=False)


def class_inputs() -> ClassInputs:
    """A three-class label set with units and KG triples."""
    return ClassInputs(
        names=["ride bike", "brush teeth", "jump"],
        prompts=[["a video of a person riding a bike."], ["a video of a person brushing teeth.",
                 "someone brushes their teeth."], ["a video of a person jumping."]],
        unit_texts=["hand", "bicycle", "teeth", "legs bend", "toothbrush"],
        unit_types=["body_part", "object", "body_part", "movement", "object"],
        class_units=[[0, 1], [0, 2, 4], [3]],
        triples=[
            ("ride bike", "action-movement", "hand"),
            ("brush teeth", "action-movement", "hand hold toothbrush"),
            ("jump", "action-movement", "legs bend"),
            ("jump", "action-movement", "legs bend"),  # duplicates are kept once
        ],
    )


def images(b: int, t: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, t, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("regions", [1, 4])
def test_shapes_for_frames_regions_and_batches(regions):
    model = tiny_model(num_regions=regions).eval()
    classes = model.encode_classes(class_inputs())
    k = model.cfg.su_top_k
    u = len(classes.unit_texts)
    h, w = model.backbone.grid_size
    for t in (1, 2, 8, 16):
        for b in (1, 3):
            with torch.no_grad():
                video = model.encode_video(images(b, t))
                out = model.score(video, classes)
            assert video.regions.shape == (b, t, regions, 64)
            assert out.region_maps.shape == (b, t, regions, h, w)
            torch.testing.assert_close(out.region_maps.sum((-1, -2)), torch.ones(b, t, regions))
            assert out.logits.shape == (b, 3)
            assert set(out.terms) == {"video_text", "wti", "triplet"}
            assert out.su.frame_scores.shape == (b, t, u)
            assert out.su.indices.shape == (b, min(k, u))
            assert out.unit_maps.shape == (b, t, min(k, u), h, w)
            assert out.wti.similarity.shape[:2] == (b, 3) and out.wti.similarity.shape[-1] == t
            # the KG edges of each video's top class (four triples, one duplicate, one per class)
            top = set(out.logits.argmax(1).tolist())
            assert sorted(out.edge_index.tolist()) == sorted(top)
            assert out.edge_scores.shape == (len(top),)


def test_all_switches_off_is_plain_mean_pooled_clip():
    model = tiny_model(**ModelConfig.plain_clip(**TINY).to_dict()).eval()
    assert not model.head_modules()
    inputs = class_inputs()
    inputs.prompts = [p[:1] for p in inputs.prompts]
    x = images(2, 5)
    with torch.no_grad():
        out = model.score(model.encode_video(x), model.encode_classes(inputs))
        clip = model.backbone.model
        frames = clip.encode_image(x.flatten(0, 1)).reshape(2, 5, -1)
        video = F.normalize(frames.mean(1), dim=-1)
        texts = F.normalize(clip.encode_text(model.backbone.tokenizer([p[0] for p in inputs.prompts])), dim=-1)
        expected = clip.logit_scale.exp() * video @ texts.T
    torch.testing.assert_close(out.logits, expected, rtol=1e-5, atol=1e-5)


def test_untrained_heads_keep_the_clip_video_embedding():
    """Zero-initialised MRA output and decoder: fine-tuning starts from pretrained CLIP."""
    model = tiny_model().eval()
    x = images(2, 4)
    with torch.no_grad():
        video = model.encode_video(x)
        out = model.score(video, model.encode_classes(class_inputs()))
    torch.testing.assert_close(out.video_emb, video.frames.mean(1))


def test_gradients_reach_every_new_parameter():
    model = tiny_model(su_loss_weight=0.5).train()
    classes = model.encode_classes(class_inputs())
    labels = torch.tensor([0, 2])
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    # zero-initialised residual branches pass gradients upstream from the second step on
    for _ in range(2):
        opt.zero_grad()
        compute_losses(model, model(images(2, 3), classes), classes, labels)["total"].backward()
        opt.step()
    for head, module in model.head_modules().items():
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{head}.{name} gets no gradient"
    assert model.backbone.model.visual.conv1.weight.grad.abs().sum() > 0


def _text_tower(model: KGClipModel) -> list[torch.nn.Parameter]:
    clip = model.backbone.model
    return [p for n, p in clip.named_parameters() if not n.startswith("visual.") and n != "logit_scale"]


def test_train_text_sends_gradients_into_the_text_tower(monkeypatch, tmp_path):
    model = tiny_model(train_text=True).train()
    model.backbone.cache = TextEmbeddingCache(tmp_path)
    calls = []
    get = model.backbone.cache.get_or_compute
    monkeypatch.setattr(model.backbone.cache, "get_or_compute", lambda *a: calls.append(1) or get(*a))
    classes = model.encode_classes(class_inputs())
    assert not calls  # training: the tower runs afresh, uncached
    assert classes.class_emb.requires_grad and classes.word_tokens.requires_grad
    compute_losses(model, model(images(2, 3), classes), classes, torch.tensor([0, 2]))["total"].backward()
    clip = model.backbone.model
    for p in (clip.token_embedding.weight, clip.text_projection, clip.ln_final.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    with torch.no_grad():  # evaluation: the same embeddings, without a graph, through the cache
        frozen = model.encode_classes(class_inputs())
    assert calls and not frozen.class_emb.requires_grad
    torch.testing.assert_close(frozen.class_emb, classes.class_emb.detach(), atol=1e-5, rtol=0)
    assert not model.eval().encode_classes(class_inputs()).class_emb.requires_grad  # e.g. the Predictor
    # A training step changes the tower, so evaluation never reads the old tower's cached embeddings.
    torch.optim.SGD([p for p in _text_tower(model)], lr=1.0).step()
    with torch.no_grad():
        after = model.encode_classes(class_inputs())
    assert not torch.allclose(after.class_emb, frozen.class_emb)


def test_frozen_text_tower_uses_the_cache_and_gets_no_gradient(monkeypatch):
    model = tiny_model().train()
    calls = []
    get = model.backbone.cache.get_or_compute
    monkeypatch.setattr(model.backbone.cache, "get_or_compute", lambda *a: calls.append(1) or get(*a))
    classes = model.encode_classes(class_inputs())
    assert calls and not classes.class_emb.requires_grad and not classes.unit_emb.requires_grad
    compute_losses(model, model(images(2, 3), classes), classes, torch.tensor([0, 2]))["total"].backward()
    assert all(p.grad is None for p in _text_tower(model))
    assert model.backbone.model.visual.conv1.weight.grad is not None


def test_deterministic_under_a_seed():
    x = images(2, 3)
    outs = []
    for _ in range(2):
        model = tiny_model(seed=7).eval()
        with torch.no_grad():
            outs.append(model.score(model.encode_video(x), model.encode_classes(class_inputs())).logits)
    assert torch.equal(outs[0], outs[1])
    other = tiny_model(seed=8).eval()
    with torch.no_grad():
        assert not torch.equal(outs[0], other.score(other.encode_video(x), other.encode_classes(class_inputs())).logits)


def test_padded_frames_are_ignored():
    model = tiny_model(use_decoder=False, use_triplet=False).eval()
    classes = model.encode_classes(class_inputs())
    x = images(1, 5)
    padded = torch.cat([x, 10 * torch.randn(1, 3, 3, 64, 64)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    with torch.no_grad():
        a = model.score(model.encode_video(x), classes)
        b = model.score(model.encode_video(padded, frame_mask=mask), classes)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-5, atol=1e-5)


def test_training_free_scores_prompt_plus_best_units():
    cfg = ModelConfig.training_free_preset(**TINY, su_top_k=2)
    torch.manual_seed(0)
    model = build_model(cfg, device="cpu", use_text_cache=False).eval()
    assert not model.head_modules() and not any(n.startswith(("mra", "decoder")) for n, _ in model.named_parameters())
    inputs = class_inputs()
    inputs.class_units[2] = []  # a class without units is scored by its prompt alone
    classes = model.encode_classes(inputs)
    x = images(2, 4)
    with torch.no_grad():
        video = model.encode_video(x)
        out = model.score(video, classes)
    mean = F.normalize(video.frames.mean(1), dim=-1)
    frames = F.normalize(video.frames, dim=-1)
    for b in range(2):
        for c, units in enumerate(inputs.class_units):
            prompt = float(mean[b] @ classes.class_emb[c])
            unit_scores = sorted((float((frames[b] @ classes.unit_emb[u]).mean()) for u in units), reverse=True)
            su = sum(unit_scores[:2]) / len(unit_scores[:2]) if units else prompt
            expected = float(model.backbone.logit_scale.detach()) * 0.5 * (prompt + su)
            assert abs(float(out.logits[b, c]) - expected) < 1e-4
    assert out.unit_maps.shape[2] == 2
    torch.testing.assert_close(out.unit_maps.sum((-1, -2)), torch.ones(2, 4, 2))


def test_class_features_reuse_embeddings():
    model = tiny_model().eval()
    inputs = class_inputs()
    classes = model.encode_classes(inputs)
    torch.testing.assert_close(classes.class_emb.norm(dim=-1), torch.ones(3))
    assert classes.class_unit_mask.tolist()[2] == [False, False, False, True, False]
    assert classes.word_mask.any(1).all()
    # the triple head "jump" is the class embedding, its tail "legs bend" the unit embedding
    assert torch.equal(classes.triple_heads[2], classes.class_emb[2])
    assert torch.equal(classes.triple_tails[2], classes.unit_emb[3])


@pytest.mark.parametrize(
    "change, word",
    [
        (lambda i: setattr(i, "names", []), "empty"),
        (lambda i: setattr(i, "prompts", i.prompts[:2]), "prompt"),
        (lambda i: i.class_units.__setitem__(0, [9]), "outside"),
        (lambda i: setattr(i, "unit_types", ["object"]), "unit_types"),
        (lambda i: i.triples.append(("jump", "likes", "hand")), "relation"),
    ],
)
def test_malformed_class_inputs_raise_label_error(change, word):
    inputs = class_inputs()
    change(inputs)
    with pytest.raises(LabelError, match=word):
        inputs.validate()


def test_triplet_shortlist_reranks_only_the_top_classes():
    inputs = class_inputs()
    inputs.names += ["climb", "swim", "throw"]
    inputs.prompts += [["climbing"], ["swimming"], ["throwing"]]
    inputs.class_units += [[1], [2], [3]]
    x = images(2, 3)
    outs = {}
    for shortlist in (0, 2):
        model = tiny_model(seed=5, triplet_shortlist=shortlist).eval()
        with torch.no_grad():
            outs[shortlist] = model.score(model.encode_video(x), model.encode_classes(inputs))
    full, short = outs[0], outs[2]
    other = (full.terms["video_text"] + full.terms["wti"]) / 2
    top = other.topk(2, dim=1).indices
    # shortlisted classes keep their exact scores ...
    torch.testing.assert_close(short.logits.gather(1, top), full.logits.gather(1, top))
    # ... every other class ranks below all of them, in the order of the other terms
    for b in range(2):
        rest = [c for c in range(6) if c not in top[b].tolist()]
        assert short.logits[b, rest].max() <= short.logits[b, top[b]].min()
        assert short.logits[b, rest].argsort().tolist() == other[b, rest].argsort().tolist()


def test_encode_classes_embeds_what_the_heads_need_and_reports_progress():
    inputs = class_inputs()
    full_seen, plain_seen = [], []
    full = tiny_model().eval().encode_classes(inputs, progress=lambda d, t: full_seen.append((d, t)))
    plain_model = tiny_model(use_mra=False, use_su=False, use_decoder=False, use_wti=False, use_triplet=False)
    plain = plain_model.eval().encode_classes(inputs, progress=lambda d, t: plain_seen.append((d, t)))
    # 4 prompts + 5 units + 3 class names (WTI) + the one triple end that is neither a name nor a unit
    assert full_seen[-1] == (13, 13) and [d for d, _ in full_seen] == sorted(d for d, _ in full_seen)
    assert plain_seen[-1] == (4, 4)  # mean-pooled CLIP reads the prompts only
    assert plain.unit_emb.shape[0] == 0 and plain.word_tokens is None and plain.triple_heads is None
    torch.testing.assert_close(plain.class_emb, full.class_emb)


def test_edge_plausibility_is_scored_once_per_weights(monkeypatch):
    """A KG edge's plausibility depends on its texts and the encoder's weights only: computed
    once per label set, the same as scoring it directly, and again once the weights change."""
    from kgclip_core.model.triplet import RELATIONS

    model = tiny_model().eval()
    classes = model.encode_classes(class_inputs())
    with torch.no_grad():
        heads, tails, rels = classes.triple_heads, classes.triple_tails, classes.triple_relations
        direct = 0.5 * (model.triplet(heads, rels, tails) + model.triplet(tails, rels + len(RELATIONS), heads))
    torch.testing.assert_close(model.edge_plausibility(classes, [2, 0, 2]), direct[[2, 0, 2]])
    calls = []
    original = type(model.triplet).forward
    monkeypatch.setattr(type(model.triplet), "forward", lambda self, *a: calls.append(1) or original(self, *a))
    model.edge_plausibility(classes, [0, 2])
    assert not calls  # kept
    with torch.no_grad():
        model.triplet.delta.add_(1.0)  # as an optimiser step changes the weights in place
    changed = model.edge_plausibility(classes, [0])
    assert calls and not torch.allclose(changed, direct[[0]])
