"""The text tower with shared prefixes computed once, and models built without initialisation."""

from __future__ import annotations

import threading
from dataclasses import replace

import open_clip
import pytest
import torch

from kgclip_core.backbone import BackboneConfig, load_backbone
from kgclip_core.prompts import VIDEO_TEMPLATES, class_prompts
from kgclip_core.skip_init import init_skipped
from kgclip_core.text_prefix import encode_eot, prefix_groups, supports_prefix_sharing

NAMES = ["clap hands", "wave right hand", "jump with arms up", "squat", "punch with right arm",
         "throw ball overhand", "raise right arm", "bounce ball", "kick with the left leg while hopping",
         "a", "sit down slowly on a chair", "run", "turn around", "bow", "shake head", "nod"]


def _prompts() -> list[str]:
    return [p for prompts in class_prompts(NAMES) for p in prompts]


def test_prefix_groups_share_each_template_start(tiny_backbone):
    texts = _prompts() + ["jump", "left hand"]
    groups = prefix_groups(tiny_backbone.tokenizer(texts), min_group=len(NAMES))
    assert sorted(i for _, idx in groups for i in idx) == list(range(len(texts)))  # every text once
    assert len([p for p, _ in groups if p]) == len(VIDEO_TEMPLATES)
    # Each template's prompts form one group (even "a video of a.", which also starts like
    # the 16 "a video of a person ..." prompts).
    for p, idx in groups:
        if p:
            assert len({i % len(VIDEO_TEMPLATES) for i in idx}) == 1 and len(idx) == len(NAMES)
    # The two short texts share nothing with anything.
    assert [texts[i] for p, idx in groups if not p for i in idx] == ["jump", "left hand"]


@pytest.mark.parametrize("batch", [3, 256])
def test_shared_prefixes_give_the_plain_embeddings(tiny_backbone, batch):
    texts = _prompts() + ["jump", "left hand", "a video of"]
    tokens = tiny_backbone.tokenizer(texts)
    assert supports_prefix_sharing(tiny_backbone.model)
    seen = []
    with torch.no_grad():
        plain = tiny_backbone._text_forward(tokens, trim=True, kind="eot")["eot"]
        shared = encode_eot(tiny_backbone.model, tokens, batch, seen.append, min_group=4)
    torch.testing.assert_close(shared, plain, rtol=1e-5, atol=1e-5)
    assert sum(seen) == len(texts)


def test_the_backbone_shares_prefixes_by_default_and_can_be_told_not_to(tiny_backbone):
    texts = _prompts()
    cfg = tiny_backbone.cfg
    try:
        tiny_backbone.cfg = replace(cfg, share_text_prefixes=False)
        with torch.no_grad():
            plain = tiny_backbone._text_outputs(texts, "eot", trim=True)["eot"]
        tiny_backbone.cfg = replace(cfg, share_text_prefixes=True)
        with torch.no_grad():
            shared = tiny_backbone._text_outputs(texts, "eot", trim=True)["eot"]
    finally:
        tiny_backbone.cfg = cfg
    torch.testing.assert_close(shared, plain, rtol=1e-5, atol=1e-5)
    assert BackboneConfig().share_text_prefixes


def test_shared_prefixes_carry_gradients_like_the_plain_pass(tiny_backbone):
    texts = _prompts()[:32]
    tokens = tiny_backbone.tokenizer(texts)
    weight = tiny_backbone.model.transformer.resblocks[0].attn.in_proj_weight
    grads = []
    for run in (lambda: tiny_backbone._text_forward(tokens, trim=True, kind="eot")["eot"],
                lambda: encode_eot(tiny_backbone.model, tokens, 8, min_group=4)):
        weight.grad = None
        run().square().sum().backward()
        grads.append(weight.grad.clone())
    weight.grad = None
    # Summed over many texts, rounding differs element by element: compare the whole gradient.
    assert grads[0].norm() > 0 and ((grads[1] - grads[0]).norm() / grads[0].norm()) < 1e-4


def test_init_skipped_leaves_tensors_alone_in_its_thread_only():
    from torch.nn.modules import activation

    filled = torch.full((64, 64), 7.0)
    with init_skipped():
        torch.nn.init.normal_(filled)
        activation.xavier_uniform_(filled)  # MultiheadAttention's own binding, imported by name
        other = {}

        def build() -> None:  # another thread initialises as usual meanwhile
            other["t"] = torch.full((64, 64), 7.0)
            torch.nn.init.normal_(other["t"])

        thread = threading.Thread(target=build)
        thread.start()
        thread.join()
    assert torch.equal(filled, torch.full((64, 64), 7.0))
    assert not torch.equal(other["t"], torch.full((64, 64), 7.0))
    after, mha = torch.full((64, 64), 7.0), torch.full((64, 64), 7.0)
    torch.nn.init.normal_(after)  # restored on exit
    activation.xavier_uniform_(mha)
    assert not torch.equal(after, torch.full((64, 64), 7.0)) and not torch.equal(mha, torch.full((64, 64), 7.0))


def test_weights_loaded_over_a_skipped_initialisation_equal_a_normal_load(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model("kgclip-tiny").state_dict(), path)
    loaded = load_backbone(BackboneConfig("kgclip-tiny", str(path), device="cpu"))
    reference = open_clip.create_model("kgclip-tiny", pretrained=str(path))
    ours, theirs = loaded.model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert torch.equal(loaded.model.attn_mask, reference.attn_mask)  # built, not initialised
    with torch.no_grad():
        text = loaded.tokenizer(["a person is clapping."])
        torch.testing.assert_close(loaded.encode_text(["a person is clapping."]),
                                   reference.encode_text(text), rtol=1e-5, atol=1e-5)
