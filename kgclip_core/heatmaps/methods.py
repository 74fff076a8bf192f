"""Where a text (a semantic unit such as "right hand wave", or a class) is in each frame: several methods.

Every method answers the same question on any open_clip ViT: given images [N, 3, S, S] and text
embeddings, how much does each place of each image account for the image matching the text?

The methods (:data:`HEATMAP_METHODS`): the model's own patch-token ``cosine``; ``surgery``, the
same cosine after CLIP Surgery's feature surgery (what the label set's concepts share is taken
out of each text, so a map no longer lights up wherever the image looks like *any* concept of
the set, the background included); three
training-free attention-path methods that change the last block (``clearclip``, ``sclip``,
``maskclip``; ``heatmaps.attention``), which cost one attention product when they reuse a
prediction's forward pass; and three that need gradients (``legrad``, ``grad-eclip``:
``heatmaps.gradient``; ``integrated-gradients``: ``heatmaps.integrated_gradients``), one or more backward
passes per text; and ``occlusion`` (``heatmaps.occlusion``), which hides one patch at a time:
faithful by construction, the reference the others are read against, one forward pass per patch.

Maps come back on the patch grid [N, K, h, w] (on the input pixels [N, K, S, S] for
``integrated-gradients``), each in [0, 1] with 1 at its peak: similarity maps are min-max
scaled per map, attribution maps (0 = no contribution) divided by their maximum. Which method
points best at the right body part is measured in docs/EXPLAIN.md (``python -m experiments.heatmaps``).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F

from kgclip_core.backbone import ClipBackbone
from kgclip_core.errors import ConfigError
from kgclip_core.heatmaps.attention import LastBlockQKV, attention_path_patches
from kgclip_core.heatmaps.gradient import grad_eclip, legrad
from kgclip_core.heatmaps.integrated_gradients import text_integrated_gradients
from kgclip_core.heatmaps.occlusion import occlusion

# How maps are made when the weights do not say: a CLIP pretrained on image-text pairs alone
# (OpenAI's, the first-stage foundation), whose patch tokens do not carry their region's meaning;
# chosen by the pointing game and deletion/insertion curves on the synthetic ground truth
# (docs/EXPLAIN.md). A checkpoint names its own (config.json's ``heatmap_method``), as does the
# shipped foundation (synth.foundation).
DEFAULT_HEATMAP_METHOD = "sclip"
ATTENTION_PATH = {"clearclip": "qq", "sclip": "qq+kk", "maskclip": "identity"}
HEATMAP_METHODS = {
    "cosine": "patch-token cosine with the text (the model's own dense maps)",
    "surgery": "patch-token cosine with the text less what all the label set's concepts share (CLIP Surgery)",
    "clearclip": "ClearCLIP: last block with query-query attention, no residual, no feed-forward",
    "sclip": "SCLIP: last block with query-query + key-key attention, no residual, no feed-forward",
    "maskclip": "MaskCLIP: last block's value path only (each token attends to itself)",
    "legrad": "LeGrad: gradient of the text score on the last two blocks' attention maps",
    "grad-eclip": "Grad-ECLIP: channel gradients x values x query-key similarity in the last block",
    "integrated-gradients": "Integrated Gradients of the text score on the input pixels (16 steps)",
    "occlusion": "occlusion: the drop of the text score when each patch is hidden (one pass per patch)",
}
# Maps read off the patch tokens of the ordinary forward pass: free once the frames are encoded.
PATCH_COSINE = ("cosine", "surgery")
# Methods that need one forward pass (the prediction's own): cheap enough for every prediction.
SINGLE_PASS = (*PATCH_COSINE, *ATTENTION_PATH)
__all__ = ["ATTENTION_PATH", "DEFAULT_HEATMAP_METHOD", "HEATMAP_METHODS", "PATCH_COSINE", "SINGLE_PASS",
           "check_method", "recorder", "shared_concept", "text_maps"]


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`HEATMAP_METHODS`, else a ConfigError that lists them."""
    if method not in HEATMAP_METHODS:
        raise ConfigError(f"Unknown heatmap method {method!r}; choose one of: {', '.join(HEATMAP_METHODS)}.")
    return method


def recorder(backbone: ClipBackbone, method: str) -> LastBlockQKV | nullcontext:
    """What ``method`` can reuse from an ordinary forward pass, as a context manager to run it in:
    the last block's queries, keys and values for the attention-path methods, nothing for the others."""
    return LastBlockQKV(backbone.model.visual) if check_method(method) in ATTENTION_PATH else nullcontext()


def _similarity_maps(patches: torch.Tensor, texts: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Min-max scaled cosine of patches [N, P, D] with texts [N, K, D] -> [N, K, h, w]."""
    sim = torch.einsum("npd,nkd->nkp", F.normalize(patches.float(), dim=-1), F.normalize(texts.float(), dim=-1))
    low, high = sim.amin(dim=-1, keepdim=True), sim.amax(dim=-1, keepdim=True)
    return ((sim - low) / (high - low).clamp_min(1e-12)).reshape(*sim.shape[:2], *grid)


def shared_concept(concepts: torch.Tensor) -> torch.Tensor:
    """What a label set's concept embeddings [U, D] share: the mean of the unit vectors [D]
    (CLIP Surgery's redundant feature; zero for fewer than two concepts, where nothing is
    shared with another)."""
    unit = F.normalize(concepts.float(), dim=-1)
    return unit.mean(0) if len(unit) > 1 else unit.new_zeros(unit.shape[-1])


@torch.no_grad()
def _single_pass(backbone: ClipBackbone, images: torch.Tensor, texts: torch.Tensor, method: str,
                 recorded: LastBlockQKV | None, patches: torch.Tensor | None,
                 concepts: torch.Tensor | None) -> torch.Tensor:
    if method in PATCH_COSINE:
        if patches is None:
            _, patches = backbone.encode_frames(images)
        if method == "surgery":
            if concepts is None:
                raise ValueError("the surgery method needs the label set's concept embeddings (concepts=)")
            # The patch cosine with (text - shared) is the cosine with the text less that with
            # the shared part, up to the map's own min-max scaling.
            texts = F.normalize(texts.float(), dim=-1) - shared_concept(concepts).to(texts.device)
    else:
        if recorded is None:
            with LastBlockQKV(backbone.model.visual) as recorded:
                backbone.encode_frames(images)
        patches = attention_path_patches(backbone.model.visual, recorded.qkv, ATTENTION_PATH[method])
    return _similarity_maps(patches, texts, backbone.grid_size)


def text_maps(backbone: ClipBackbone, images: torch.Tensor, texts: torch.Tensor,
              method: str = DEFAULT_HEATMAP_METHOD, recorded: LastBlockQKV | None = None,
              patches: torch.Tensor | None = None, concepts: torch.Tensor | None = None) -> torch.Tensor:
    """Maps of texts on images by ``method`` (see the module docstring), each in [0, 1].

    ``images`` [N, 3, S, S] as the backbone preprocesses them; ``texts`` [K, D] (every image
    against every text) or [N, K, D] (texts per image), in the joint space. ``recorded``: the
    last block's queries, keys and values recorded while these images were encoded
    (:func:`recorder`), which the attention-path methods then reuse instead of running the
    tower again; ``patches``
    [N, P, D]: the images' patch tokens from that pass, which ``cosine`` and ``surgery`` read
    instead of encoding the images again. ``concepts`` [U, D]: the label set's concept
    embeddings, whose shared part ``surgery`` removes (required there). Returns [N, K, h, w]
    on the patch grid ([N, K, S, S] on the pixels for ``integrated-gradients``).
    """
    check_method(method)
    texts = texts.to(images.device)
    texts = texts.expand(len(images), *texts.shape) if texts.dim() == 2 else texts
    if method in SINGLE_PASS:
        return _single_pass(backbone, images, texts, method, recorded, patches, concepts)
    per_text = {"legrad": lambda t: legrad(backbone, images, t),
                "grad-eclip": lambda t: grad_eclip(backbone, images, t),
                "integrated-gradients": lambda t: text_integrated_gradients(backbone, images, t),
                "occlusion": lambda t: occlusion(backbone, images, t)}[method]
    # One text at a time: every image is scored against its k-th text in the same passes.
    return torch.stack([per_text(texts[:, k]) for k in range(texts.shape[1])], dim=1)
