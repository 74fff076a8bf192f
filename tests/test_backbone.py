"""The CLIP backbone: dense tokens agree with open_clip's pooled outputs; weights load or fail clearly."""

import numpy as np
import pytest
import torch

from kgclip_core.backbone import BackboneConfig, load_backbone
from kgclip_core.errors import ConfigError, WeightsError
from kgclip_core.text_cache import TextEmbeddingCache


def test_frame_tokens_match_open_clip(tiny_backbone):
    frames = np.random.default_rng(0).integers(0, 255, (3, 90, 120, 3), dtype=np.uint8)
    images = tiny_backbone.preprocess(frames)
    assert images.shape == (3, 3, tiny_backbone.image_size, tiny_backbone.image_size)
    cls, patches = tiny_backbone.encode_frames(images)
    gh, gw = tiny_backbone.grid_size
    assert patches.shape == (3, gh * gw, tiny_backbone.embed_dim)
    torch.testing.assert_close(cls, tiny_backbone.model.encode_image(images))


def test_text_tokens_match_open_clip(tiny_backbone):
    texts = ["a person is playing guitar.", "jump"]
    eot, tokens, mask = tiny_backbone.encode_text_tokens(texts)
    ref = tiny_backbone.model.encode_text(tiny_backbone.tokenizer(texts))
    torch.testing.assert_close(eot, ref)
    torch.testing.assert_close(tiny_backbone.encode_text(texts), ref)
    # "jump" is one BPE token; the mask excludes start, end and padding.
    assert mask[1].sum() == 1 and mask[0].sum() > 3 and not mask[:, 0].any()
    assert tokens.shape[:2] == mask.shape


def test_text_cache_hits_and_is_keyed_by_texts(tmp_path, tiny_backbone):
    calls = []
    cache = TextEmbeddingCache(tmp_path)

    def compute():
        calls.append(1)
        return {"eot": torch.ones(2, 3)}

    first = cache.get_or_compute("k1", compute)
    again = cache.get_or_compute("k1", compute)
    cache.get_or_compute("k2", compute)
    assert len(calls) == 2 and torch.equal(first["eot"], again["eot"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1.safetensors", "k2.safetensors"]


def test_random_weights_need_opt_in():
    with pytest.raises(WeightsError, match="random weights"):
        load_backbone(BackboneConfig("kgclip-tiny", None, allow_random=False))


def test_missing_weights_file_says_what_to_do(tmp_path):
    with pytest.raises(WeightsError, match="--pretrained"):
        load_backbone(BackboneConfig("kgclip-tiny", str(tmp_path / "nope.safetensors")))


def test_unknown_tag_and_model():
    with pytest.raises(WeightsError, match="not a pretrained tag"):
        load_backbone(BackboneConfig("ViT-B-32", "no-such-tag"))
    with pytest.raises(ConfigError, match="Unknown open_clip model"):
        load_backbone(BackboneConfig("ViT-Z-99", None, allow_random=True))


def test_offline_tag_fails_fast_with_help(monkeypatch):
    import kgclip_core.backbone as bb

    monkeypatch.setattr(bb, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(bb, "_cached_weights", lambda model, tag: None)
    with pytest.raises(WeightsError, match="unreachable") as info:
        load_backbone(BackboneConfig("ViT-B-32", "openai"))
    assert "--random-weights" in str(info.value) and "--pretrained" in str(info.value)


def test_text_grad_path_matches_the_cache_and_carries_gradients(tmp_path):
    torch.manual_seed(0)
    backbone = load_backbone(BackboneConfig("kgclip-tiny", None, allow_random=True, device="cpu",
                                            cache_dir=str(tmp_path)))
    texts = ["a person is playing guitar.", "jump", "a video of someone raising both arms slowly"]
    eot, tokens, mask = backbone.encode_text_tokens(texts)
    assert not eot.requires_grad and any(tmp_path.iterdir())  # the default is cached, without gradients
    files = set(tmp_path.rglob("*"))
    g_eot, g_tokens, g_mask = backbone.encode_text_tokens(texts, grad=True)
    assert set(tmp_path.rglob("*")) == files  # the grad path neither reads nor writes the cache
    torch.testing.assert_close(g_eot, eot)
    length = g_tokens.shape[1]  # trimmed after the longest text's end token
    assert length < tokens.shape[1] and not mask[:, length:].any()
    torch.testing.assert_close(g_tokens, tokens[:, :length])
    assert torch.equal(g_mask, mask[:, :length])
    (backbone.encode_text(texts, grad=True).sum() + g_tokens[g_mask].sum()).backward()
    for p in (backbone.model.token_embedding.weight, backbone.model.text_projection):
        assert p.grad is not None and p.grad.abs().sum() > 0
