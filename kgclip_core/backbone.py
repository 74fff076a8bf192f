"""The CLIP backbone: open_clip loading, frame and patch tokens, text tokens, in one joint space.

Any open_clip ViT model loads by name with a pretrained tag (downloaded the standard way, to
the Hugging Face cache), a local weights file, or - only when asked for explicitly - random
weights. Beside the usual pooled embeddings, the backbone exposes what the KG-CLIP heads need:
patch tokens and per-word text tokens projected into the joint image-text space.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from kgclip_core.errors import ConfigError, WeightsError
from kgclip_core.skip_init import init_skipped, skipping
from kgclip_core.text_cache import TextEmbeddingCache, cache_key, default_cache_dir
from kgclip_core.text_prefix import encode_eot, supports_prefix_sharing

log = logging.getLogger(__name__)

# Tiny architectures for tests and the synthetic testbed, registered with open_clip by name.
open_clip.add_model_config(Path(__file__).parent / "model_configs")

GPU_DEFAULT = ("ViT-B-16", "openai")
# ViT-B-32 is ~4x cheaper than B-16 per frame: the default on CPU (benchmarks/bench_backbone.py).
CPU_DEFAULT = ("ViT-B-32", "openai")
_HUB_HOST = ("huggingface.co", 443)
_RANDOM_CLAIM = "No pretrained weights loaded for model"  # open_clip's warning on a model built without weights
# Called with how many texts were just embedded (a batch, or a whole list read from the cache).
TextProgress = Callable[[int], None]


@dataclass
class BackboneConfig:
    """Which CLIP to load and where to run it.

    ``pretrained`` is an open_clip tag (``openai``, ``laion2b_s34b_b79k``...), a path to a
    weights file, or ``None`` for random weights, which also needs ``allow_random=True``.
    """

    model_name: str = CPU_DEFAULT[0]
    pretrained: str | None = CPU_DEFAULT[1]
    allow_random: bool = False
    device: str = "auto"
    text_batch_size: int = 256
    cache_dir: str | None = None  # text-embedding cache; None: default_cache_dir()/"text"
    cache_max_bytes: int | None = None  # past it, least recently used entries go; None: default_max_bytes()
    use_text_cache: bool = True
    # Texts that start alike (template prompts) share the work on that start: same embeddings
    # up to float rounding, about 30% faster on a label set (kgclip_core/text_prefix.py).
    share_text_prefixes: bool = True

    @classmethod
    def default_for(cls, device: str = "auto", **overrides) -> BackboneConfig:
        """The default model for a device: ViT-B-16 on GPU, ViT-B-32 on CPU."""
        name, tag = GPU_DEFAULT if resolve_device(device).type == "cuda" else CPU_DEFAULT
        return cls(model_name=name, pretrained=tag, device=device, **overrides)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` means CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"Unknown device {str(device)!r}; use auto, cpu, cuda or cuda:N.") from None


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(_HUB_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def _cached_weights(model_name: str, tag: str) -> str | None:
    """Path of a tag's weights already in the Hugging Face cache, if any."""
    from huggingface_hub import try_to_load_from_cache

    # open_clip writes hub locations as "org/repo/filename" (filename may be empty).
    repo_id, filename = os.path.split(open_clip.get_pretrained_cfg(model_name, tag).get("hf_hub", ""))
    if not repo_id:
        return None
    for name in filter(None, [filename, "open_clip_model.safetensors", "open_clip_pytorch_model.bin"]):
        found = try_to_load_from_cache(repo_id, name)
        if isinstance(found, str):
            return found
    return None


def _weights_help(model_name: str, pretrained: str, cause: str) -> str:
    return (
        f"Could not load pretrained weights {pretrained!r} for {model_name} ({cause}).\n"
        "To fix it, either:\n"
        "  - connect to the internet once: weights download to the Hugging Face cache (~/.cache/huggingface);\n"
        "  - pass a local weights file: --pretrained /path/to/open_clip_model.safetensors;\n"
        "  - or opt in to random weights to explore the UI only: --random-weights "
        "(predictions are then meaningless)."
    )


def _resolve_pretrained(cfg: BackboneConfig) -> str | None:
    """What to hand open_clip as ``pretrained``: a tag, a local file, or None (random)."""
    if cfg.pretrained is None:
        if not cfg.allow_random:
            raise WeightsError(
                f"No weights given for {cfg.model_name}. Pass a pretrained tag or file, or opt in "
                "to random weights explicitly (--random-weights) for a UI demo."
            )
        return None
    if os.path.sep in cfg.pretrained or Path(cfg.pretrained).suffix:
        if not Path(cfg.pretrained).is_file():
            raise WeightsError(_weights_help(cfg.model_name, cfg.pretrained, "file not found"))
        return cfg.pretrained
    if not open_clip.get_pretrained_cfg(cfg.model_name, cfg.pretrained):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(cfg.model_name)) or "none"
        raise WeightsError(f"{cfg.pretrained!r} is not a pretrained tag of {cfg.model_name}; known tags: {tags}.")
    cached = _cached_weights(cfg.model_name, cfg.pretrained)
    if cached:
        return cached
    # Fail fast offline instead of letting the hub client retry for most of a minute.
    if not _hub_reachable():
        raise WeightsError(_weights_help(cfg.model_name, cfg.pretrained, "the Hugging Face hub is unreachable"))
    return cfg.pretrained


def resize_center_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 RGB frames [N,H,W,3] -> uint8 images [N,3,size,size]: CLIP's short-side bicubic
    resize and centre crop (the pixels the image tower sees, before normalisation).

    The resize runs on uint8, as PIL does it (rounding and clipping between its two passes), so
    the pixels equal open_clip's own PIL preprocessing; torch's uint8 kernel is also about 25x
    faster on CPU than the float one. It runs on the CPU, where frames are decoded (CUDA has no
    uint8 antialiased kernel)."""
    x = frames.cpu().permute(0, 3, 1, 2)  # channels-last in memory: the fast uint8 path
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    out = (max(size, round(h * scale)), max(size, round(w * scale)))
    x = F.interpolate(x, size=out, mode="bicubic", align_corners=False, antialias=True)
    top, left = (out[0] - size) // 2, (out[1] - size) // 2
    return x[..., top:top + size, left:left + size]


def joint_tokens(visual: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Every token of an open_clip ViT (CLS first, then the patches) in the joint image-text
    space [N, 1 + P, D]. LayerNorm is per token, so the CLS row equals ``encode_image``."""
    return visual.ln_post(visual.transformer(visual._embeds(images))) @ visual.proj


@contextmanager
def _no_random_claim() -> Iterator[None]:
    """Drop open_clip's warning that a model built without weights is "initialized randomly",
    in this thread, for the duration. open_clip has no way to be told that the weights come
    next, and logs it to the root logger, so it is filtered there."""
    thread = threading.get_ident()

    def keep(record: logging.LogRecord) -> bool:
        return record.thread != thread or not record.getMessage().startswith(_RANDOM_CLAIM)

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def load_backbone(cfg: BackboneConfig) -> ClipBackbone:
    """Build the CLIP backbone described by ``cfg`` (see :class:`BackboneConfig`).

    Built inside ``skip_init.init_skipped`` with no pretrained weights, it is an architecture
    whose every weight the caller loads next (``model.checkpoint.load``): not a random model, so
    nothing says it is one.
    """
    if cfg.model_name not in open_clip.list_models():
        raise ConfigError(f"Unknown open_clip model {cfg.model_name!r}; see open_clip.list_models().")
    pretrained = _resolve_pretrained(cfg)
    device = resolve_device(cfg.device)
    weights_follow = pretrained is None and skipping()
    try:
        # A checkpoint (tag or file) overwrites every weight, strictly: skip initialising them.
        with (init_skipped() if pretrained is not None else nullcontext(),
              _no_random_claim() if weights_follow else nullcontext()):
            model = open_clip.create_model(cfg.model_name, pretrained=pretrained, device=device)
    except Exception as err:  # torch.load and open_clip fail in many ways on a file that is not weights
        cause = (str(err).splitlines() or [type(err).__name__])[0]
        raise WeightsError(_weights_help(cfg.model_name, str(cfg.pretrained), cause)) from None
    if pretrained is None and not weights_follow:
        # Not a warning here (open_clip's says it): a model that runs on these says so itself
        # (Prediction.warnings, the app's banner).
        log.info("Built %s with random initial weights (no pretrained weights loaded).", cfg.model_name)
    cache_dir = (cfg.cache_dir or default_cache_dir() / "text") if cfg.use_text_cache else None
    return ClipBackbone(model, cfg, random_weights=pretrained is None,
                        cache=TextEmbeddingCache(cache_dir, cfg.cache_max_bytes))


class ClipBackbone(nn.Module):
    """An open_clip CLIP ViT with dense outputs in the joint image-text space."""

    def __init__(self, model: open_clip.CLIP, cfg: BackboneConfig, random_weights: bool,
                 cache: TextEmbeddingCache | None = None) -> None:
        super().__init__()
        visual = model.visual
        if not isinstance(visual, open_clip.transformer.VisionTransformer) or visual.attn_pool is not None:
            raise ConfigError(f"{cfg.model_name} is not a CLIP ViT with a class token; dense tokens need one.")
        self.model = model
        self.cfg = cfg
        self.random_weights = random_weights
        self.cache = cache or TextEmbeddingCache(None)
        self.tokenizer = open_clip.get_tokenizer(cfg.model_name)
        # Prompts share their templates' beginnings: a causal tower computes each once.
        self._prefix_capable = supports_prefix_sharing(model)
        pp = visual.preprocess_cfg
        self.image_size = int(visual.image_size[0] if isinstance(visual.image_size, tuple) else visual.image_size)
        self.grid_size = tuple(int(g) for g in visual.grid_size)
        self.embed_dim = int(visual.output_dim)
        self.register_buffer("mean", torch.tensor(pp["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(pp["std"]).view(1, 3, 1, 1), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.model.logit_scale.device

    @property
    def logit_scale(self) -> torch.Tensor:
        """CLIP's learned temperature, exponentiated (100 for OpenAI CLIP)."""
        return self.model.logit_scale.exp()

    def _autocast(self):
        # bf16 autocast on GPU halves memory and time; CPU stays in fp32 for exactness.
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 RGB frames [N,H,W,3] -> normalised images [N,3,S,S] (short-side resize + centre crop)."""
        x = resize_center_crop(torch.as_tensor(np.ascontiguousarray(frames)), self.image_size)
        x = x.to(self.device, non_blocking=True).float().div_(255.0)
        return (x - self.mean) / self.std

    def encode_frames(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [N,3,S,S] -> (CLS embedding [N,D], patch tokens [N,P,D]), both in the joint space."""
        with self._autocast():
            x = joint_tokens(self.model.visual, images)
        x = x.float()
        return x[:, 0], x[:, 1:]

    def _text_forward(self, tokens: torch.Tensor, trim: bool, kind: str) -> dict[str, torch.Tensor]:
        """The text tower on token ids [N, 77]; ``trim`` drops the padding after the longest
        text's EOT, which the causal mask keeps from changing any earlier position: CLIP
        prompts are 5-20 tokens, so the 77-token context is mostly padding (several times faster).
        ``kind="eot"`` returns the EOT embeddings alone (``{"eot"}``) and projects only those."""
        m = self.model
        length = int(tokens.argmax(dim=-1).max()) + 1 if trim else tokens.shape[1]
        tokens = tokens[:, :length].to(self.device)
        attn_mask = m.attn_mask[:length, :length] if m.attn_mask is not None else None
        eot_pos = tokens.argmax(dim=-1)  # the EOT token has the largest id in CLIP's vocabulary
        rows = torch.arange(len(tokens), device=tokens.device)
        with self._autocast():
            x = m.token_embedding(tokens) + m.positional_embedding[:length]
            x = m.transformer(x, attn_mask=attn_mask)
            if kind == "eot":  # the final norm is per token: norm and project the EOT rows only
                return {"eot": (m.ln_final(x[rows, eot_pos]) @ m.text_projection).float()}
            x = m.ln_final(x) @ m.text_projection
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        mask = (positions[None] > 0) & (positions[None] < eot_pos[:, None])
        # Padding outputs are zeroed: they then do not depend on how far a batch was trimmed.
        x = x.float() * (positions[None] <= eot_pos[:, None])[..., None]
        return {"eot": x[rows, eot_pos], "tokens": x, "mask": mask}

    def word_pieces(self, text: str) -> list[str]:
        """The word tokens of ``text`` as strings, in the positions ``encode_text_tokens`` masks in."""
        ids = self.tokenizer([text])[0]
        eot = int(ids.argmax())
        return [self.tokenizer.decode([i]).strip() for i in ids[1:eot].tolist()]

    def _fingerprint(self) -> str:
        """Identifies the text tower's weights, so a fine-tuned tower never reads another's cache:
        256 evenly spaced values and the sum of every text-tower tensor (cheap next to a pass)."""
        h = hashlib.sha256(self.cfg.model_name.encode())
        for name, t in self.model.named_parameters():
            if name.startswith("visual.") or name == "logit_scale":
                continue
            flat = t.detach().flatten()
            sample = flat[:: max(1, flat.numel() // 256)]
            h.update(name.encode())
            h.update(torch.cat([sample, flat.sum()[None]]).float().cpu().numpy().tobytes())
        return h.hexdigest()

    def _text_outputs(self, texts: Sequence[str], kind: str, trim: bool,
                      progress: TextProgress | None = None) -> dict[str, torch.Tensor]:
        """The text tower's outputs for ``texts`` in batches of ``cfg.text_batch_size``;
        ``progress(n)`` is called after each batch with the number of texts it held."""
        unique = list(dict.fromkeys(texts))
        if len(unique) < len(texts):
            # A label set repeats texts (a unit that is both a motion and a part state: UCF-101
            # has 58 such among its 1,558 texts): each is run once and counted done at once.
            if progress is not None:
                progress(len(texts) - len(unique))
            out = self._text_outputs(unique, kind, trim, progress)
            where = {text: i for i, text in enumerate(unique)}
            index = torch.tensor([where[text] for text in texts], device=self.device)
            return {k: v[index] for k, v in out.items()}
        tokens = self.tokenizer(list(texts))
        if kind == "eot" and trim and self.cfg.share_text_prefixes and self._prefix_capable:
            with self._autocast():
                eot = encode_eot(self.model, tokens.to(self.device), self.cfg.text_batch_size, progress)
            return {"eot": eot.float()}
        # Trimmed batches are as long as their longest text: batching texts of similar length
        # together (by token count) wastes the least work on padding.
        order = tokens.argmax(dim=-1).argsort(stable=True) if trim else torch.arange(len(texts))
        step = self.cfg.text_batch_size
        parts = []
        for i in range(0, len(texts), step):
            parts.append(self._text_forward(tokens[order[i:i + step]], trim, kind))
            if progress is not None:
                progress(len(parts[-1]["eot"]))
        keys = ["eot"] if kind == "eot" else ["eot", "tokens", "mask"]
        if kind != "eot" and trim:  # batches trimmed to different lengths: pad back to the longest
            longest = max(p["tokens"].shape[1] for p in parts)
            for p in parts:
                pad = longest - p["tokens"].shape[1]
                p["tokens"], p["mask"] = F.pad(p["tokens"], (0, 0, 0, pad)), F.pad(p["mask"], (0, pad))
        restore = order.argsort().to(self.device)
        return {k: torch.cat([p[k] for p in parts])[restore] for k in keys}

    def _encode_text_batches(self, texts: Sequence[str], kind: str,
                             progress: TextProgress | None) -> dict[str, torch.Tensor]:
        def compute() -> dict[str, torch.Tensor]:
            return self._text_outputs(texts, kind, trim=True, progress=progress)

        with torch.no_grad():
            out, hit = self.cache.get_or_compute(cache_key(self._fingerprint(), kind, texts), compute)
        if hit and progress is not None:
            progress(len(texts))
        return {k: v.to(self.device) for k, v in out.items()}

    def _encode_text_grad(self, texts: Sequence[str], kind: str,
                          progress: TextProgress | None) -> dict[str, torch.Tensor]:
        """The text tower's outputs with gradients and without the cache (a trained text tower)."""
        return self._text_outputs(texts, kind, trim=True, progress=progress)

    def encode_text(self, texts: Sequence[str], grad: bool = False,
                    progress: TextProgress | None = None) -> torch.Tensor:
        """Texts -> EOT embeddings [N,D] in the joint space.

        By default cached on disk, without gradients (a frozen text tower). ``grad=True``
        runs the text tower every call, uncached, so its weights can be trained (a graph is
        built only where grad mode is on: under ``torch.no_grad`` it is a fresh, uncached pass).
        ``progress(n)`` is called as texts are embedded (once with all of them on a cache hit).
        """
        encode = self._encode_text_grad if grad else self._encode_text_batches
        return encode(texts, "eot", progress)["eot"]

    def encode_text_tokens(
        self, texts: Sequence[str], grad: bool = False, progress: TextProgress | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Texts -> (EOT [N,D], every token [N,L,D], mask [N,L] of real word tokens).

        L is the longest text's length (to its end token), not the 77-token context, and every
        position after a text's end token is zero (padding). Cached and without gradients by default; ``grad`` and
        ``progress`` as in :meth:`encode_text`.
        """
        encode = self._encode_text_grad if grad else self._encode_text_batches
        out = encode(texts, "tokens", progress)
        return out["eot"], out["tokens"], out["mask"].bool()
