"""The CLIP backbone: dense tokens agree with open_clip's pooled outputs; weights load or fail clearly."""

import time

import numpy as np
import open_clip
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


def test_preprocess_gives_open_clips_own_pixels(tiny_backbone, real_clip):
    """Our batched uint8 resize and crop equal open_clip's PIL transform to one grey level,
    on a real clip (downscaled) and a rendered one (upscaled, hard edges)."""
    from PIL import Image

    from kgclip_core.synth import SYNTHETIC, render_clip
    from kgclip_core.video import read_clip

    transform = open_clip.image_transform(tiny_backbone.image_size, is_train=False,
                                          mean=tiny_backbone.mean.flatten().tolist(),
                                          std=tiny_backbone.std.flatten().tolist())
    for frames in (read_clip(real_clip, 4).frames[0], render_clip(SYNTHETIC[0], 3, frames=[0, 9])[0]):
        ours = tiny_backbone.preprocess(frames)
        theirs = torch.stack([transform(Image.fromarray(f)) for f in frames])
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, atol=1.01 / 255 / float(tiny_backbone.std.min()), rtol=0)


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

    first, hit_first = cache.get_or_compute("k1", compute)
    again, hit_again = cache.get_or_compute("k1", compute)
    cache.get_or_compute("k2", compute)
    assert len(calls) == 2 and torch.equal(first["eot"], again["eot"])
    assert (hit_first, hit_again) == (False, True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1.safetensors", "k2.safetensors"]


def test_text_cache_evicts_least_recently_used_at_its_cap(tmp_path):
    entry = {"eot": torch.zeros(256)}  # 1 KiB
    cache = TextEmbeddingCache(tmp_path, max_bytes=3 * 1200)  # three entries and their headers
    for key in ("a", "b", "c"):
        cache.get_or_compute(key, lambda: entry)
        time.sleep(0.01)  # distinct modification times on coarse file systems
    assert cache.get_or_compute("a", lambda: entry)[1]  # a read makes "a" recently used
    time.sleep(0.01)
    cache.get_or_compute("d", lambda: entry)
    assert [p.stem for p, _ in cache.entries()] == ["c", "a", "d"]  # "b" was the least recently used
    assert sum(size for _, size in cache.entries()) <= cache.max_bytes
    calls = []
    cache.get_or_compute("b", lambda: calls.append(1) or entry)
    assert calls  # evicted entries are computed again


def test_text_cache_reads_a_folder_it_cannot_write(tmp_path, monkeypatch):
    cache = TextEmbeddingCache(tmp_path)
    cache.get_or_compute("k", lambda: {"eot": torch.ones(3)})

    def read_only(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr("kgclip_core.text_cache.os.utime", read_only)
    out, hit = cache.get_or_compute("k", lambda: pytest.fail("a read-only entry must still be read"))
    assert hit and torch.equal(out["eot"], torch.ones(3))


def test_text_cache_skips_an_entry_larger_than_its_cap(tmp_path):
    cache = TextEmbeddingCache(tmp_path, max_bytes=100)
    out, hit = cache.get_or_compute("big", lambda: {"eot": torch.zeros(1000)})
    assert out["eot"].shape == (1000,) and not hit and cache.entries() == []


@pytest.mark.parametrize("batch", [2, 256])
def test_trimmed_and_untrimmed_text_paths_agree(tiny_backbone, batch, monkeypatch):
    # Texts of very different lengths, so length-sorted batches trim to different lengths.
    texts = ["jump", "a video of a person slowly raising both arms above the head.", "a person is clapping.",
             "wave", "someone kicks a ball with the right leg while hopping", "squat"]
    monkeypatch.setattr(tiny_backbone.cfg, "text_batch_size", batch)
    with torch.no_grad():
        full = tiny_backbone._text_outputs(texts, "tokens", trim=False)
        trimmed = tiny_backbone._text_outputs(texts, "tokens", trim=True)
    length = trimmed["tokens"].shape[1]
    assert length == int(tiny_backbone.tokenizer(texts).argmax(-1).max()) + 1 < full["tokens"].shape[1]
    torch.testing.assert_close(trimmed["eot"], full["eot"])
    torch.testing.assert_close(trimmed["tokens"], full["tokens"][:, :length])
    assert torch.equal(trimmed["mask"], full["mask"][:, :length]) and not full["mask"][:, length:].any()
    # The default (cached) path is the trimmed one, and reports every text once.
    seen = []
    eot, tokens, _ = tiny_backbone.encode_text_tokens(texts, progress=seen.append)
    torch.testing.assert_close(eot, full["eot"])
    assert tokens.shape[1] == length and sum(seen) == len(texts)


@pytest.mark.parametrize("kind", ["eot", "tokens"])
def test_a_repeated_text_is_embedded_once_and_counted_for_each_time(tiny_backbone, kind, monkeypatch):
    texts = ["arm raise", "jump", "arm raise", "a person is clapping.", "jump", "arm raise"]
    with torch.no_grad():
        once = tiny_backbone._text_outputs(list(dict.fromkeys(texts)), kind, trim=True)
    tokenized = []
    tokenizer = tiny_backbone.tokenizer
    monkeypatch.setattr(tiny_backbone, "tokenizer", lambda t: tokenized.append(list(t)) or tokenizer(t))
    seen = []
    with torch.no_grad():
        out = tiny_backbone._text_outputs(texts, kind, trim=True, progress=seen.append)
    assert tokenized == [["arm raise", "jump", "a person is clapping."]]  # each text through the tower once
    assert sum(seen) == len(texts)  # progress still counts to the caller's total
    for key, value in out.items():
        torch.testing.assert_close(value, once[key][[0, 1, 0, 2, 1, 0]])


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
    # both paths are trimmed after the longest text's end token
    torch.testing.assert_close(g_tokens, tokens)
    assert torch.equal(g_mask, mask)
    (backbone.encode_text(texts, grad=True).sum() + g_tokens[g_mask].sum()).backward()
    for p in (backbone.model.token_embedding.weight, backbone.model.text_projection):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_a_file_that_is_not_weights_and_an_unknown_device_are_one_clear_error(tmp_path):
    junk = tmp_path / "passwd"
    junk.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(WeightsError, match="local weights file"):
        load_backbone(BackboneConfig("kgclip-tiny", str(junk), device="cpu"))
    with pytest.raises(ConfigError, match="Unknown device"):
        load_backbone(BackboneConfig("kgclip-tiny", None, allow_random=True, device="bogus"))
