"""`ModelConfig`: everything needed to rebuild a KG-CLIP model exactly.

The config is saved as JSON beside the weights (``config.json`` of a checkpoint), so every
field is a plain JSON value. Each score term and each new module has a switch, so the same
code gives the ablations: plain mean-pooled CLIP, +WTI, +MRA/SU/decoder, +KG triplets, and
the training-free mode used by the app with a pretrained CLIP.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from kgclip_core.errors import ConfigError


# The range of every numeric field (inclusive). A config can come from an untrusted checkpoint:
# these keep it from asking for a wrong type, a NaN or a multi-gigabyte model (docs/MODEL.md).
INT_BOUNDS = {
    "num_frames": (1, 64), "num_regions": (1, 64), "su_top_k": (1, 256), "decoder_layers": (1, 12),
    "decoder_heads": (1, 64), "triplet_layers": (1, 12), "triplet_heads": (1, 64), "temporal_kernel": (1, 15),
    "triplet_shortlist": (0, 100_000),
}
FLOAT_BOUNDS = {
    "region_prior_sigma": (1e-6, 10.0), "su_temperature": (1e-6, 10.0), "map_temperature": (1e-6, 10.0),
    "decoder_mlp_ratio": (0.25, 16.0), "weight_video_text": (0.0, 100.0), "weight_wti": (0.0, 100.0),
    "weight_triplet": (0.0, 100.0), "label_smoothing": (0.0, 0.999), "triplet_loss_weight": (0.0, 100.0),
    "su_loss_weight": (0.0, 100.0), "direct_loss_weight": (0.0, 100.0), "su_hub_correction": (0.0, 4.0),
}
MAX_NAME_LENGTH = 4096  # backbone name or weights path

# What a class embedding is made of: its name in prompt templates or its knowledge-graph
# description (kgclip_core.class_inputs).
CLASS_TEXTS = ("name", "description")
# The fidelity switches (docs/MODEL.md, "Ours and the papers"): each choice's first value is
# ours (the default), the second the source paper's behaviour.
CHOICES = {
    "class_text": CLASS_TEXTS,
    "su_selection": ("video", "frame"),  # ASU selects units per frame
    "edge_targets": ("hard", "soft"),  # KG-CLIP: soft targets over in-batch duplicates
    "triplet_inference": ("pair", "averaged"),  # KG-CLIP's reported inference
}


@dataclass
class ModelConfig:
    """Shape and switches of a KG-CLIP model.

    ``pretrained`` is an open_clip tag (``"openai"``), a path to a local weights file, or
    ``None`` for random weights (tests, benchmarks, and checkpoints, whose file holds the
    backbone weights anyway).
    """

    backbone: str = "ViT-B-16"
    pretrained: str | None = "openai"
    num_frames: int = 8
    # The class text: "name" (prompt templates) or "description" (the KG description).
    class_text: str = "name"
    # Train the text tower too (from scratch): class texts are then embedded with gradients,
    # uncached, on every training step. Off: frozen, cached text embeddings (fine-tuning).
    train_text: bool = False
    # Multi-region attention (ASU): R region queries over each frame's patch tokens.
    use_mra: bool = True
    num_regions: int = 4
    region_prior_sigma: float = 0.5
    # Semantic-unit selection: top-k units per video, parameter-free attention.
    use_su: bool = True
    su_top_k: int = 8
    su_temperature: float = 0.01
    # "video": the top-k units by their mean score over frames, one set for the whole clip;
    # "frame": every frame keeps its own top-k (ASU), the decoder reads each frame's own units.
    su_selection: str = "video"
    # Hubness correction of the selection (kgclip_core.model.hubness): units are ranked by their
    # cosine less this share of their mean cosine over clips; 0 ranks by the raw cosine.
    su_hub_correction: float = 0.0
    # Cross-modal video decoder: cross-attention to selected SUs + temporal convolution.
    use_decoder: bool = True
    decoder_layers: int = 2
    decoder_heads: int = 8
    decoder_mlp_ratio: float = 4.0
    temporal_kernel: int = 3
    # Score terms: logits = logit_scale * (a*cos + b*WTI + c*triplet) / (sum of active weights).
    use_video_text: bool = True
    use_wti: bool = True
    use_triplet: bool = True
    weight_video_text: float = 1.0
    weight_wti: float = 1.0
    weight_triplet: float = 1.0
    # Triplet encoder (KG-CLIP): small transformer over [head, r1, r2, tail].
    triplet_layers: int = 3
    triplet_heads: int = 8
    # The triplet term costs a transformer pass per (video, class) pair, about as much as the
    # image tower for 400 classes (benchmarks/bench_heads.py). > 0: at inference only the top
    # classes by the other terms are triplet-scored; the rest rank below them. 0: all classes.
    triplet_shortlist: int = 0
    # "pair": each (video, class) pair is scored by its own triple. "averaged": KG-CLIP's
    # inference, the head representation averaged over classes and the tail over the batch,
    # so a clip's scores depend on the other clips of its batch (to reproduce their numbers).
    triplet_inference: str = "pair"
    # Training-free scoring (prompt similarity + best-matching SU similarities).
    training_free: bool = False
    map_temperature: float = 0.05
    # Losses.
    label_smoothing: float = 0.1
    triplet_loss_weight: float = 1.0
    su_loss_weight: float = 0.0
    # In-batch contrast of the KG edges: "hard" (edge i's only positive is edge i) or "soft"
    # (every in-batch pair that is itself an edge of the graph is a positive, as KG-CLIP).
    edge_targets: str = "hard"
    # KG-CLIP's lam_coef: direct cosine contrasts beside the triple contrasts (video-action,
    # video-movement, action-movement); 0 turns them off.
    direct_loss_weight: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def _check_types_and_ranges(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in INT_BOUNDS:
                lo, hi = INT_BOUNDS[f.name]
                if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                    raise ConfigError(f"ModelConfig.{f.name} must be an integer in [{lo}, {hi}], got {value!r}.")
            elif f.name in FLOAT_BOUNDS:
                lo, hi = FLOAT_BOUNDS[f.name]
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                if not ok or not lo <= value <= hi:
                    raise ConfigError(f"ModelConfig.{f.name} must be a number in [{lo}, {hi}], got {value!r}.")
            elif f.type == "bool" and not isinstance(value, bool):
                raise ConfigError(f"ModelConfig.{f.name} must be true or false, got {value!r}.")
        for name, value in (("backbone", self.backbone), ("pretrained", self.pretrained)):
            if value is None and name == "pretrained":
                continue
            if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_LENGTH:
                raise ConfigError(f"ModelConfig.{name} must be a name of at most {MAX_NAME_LENGTH} characters.")

    def validate(self) -> None:
        """Raise :class:`ConfigError` when the fields do not describe a buildable, bounded model."""
        self._check_types_and_ranges()
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"ModelConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}.")
        if self.temporal_kernel % 2 == 0:
            raise ConfigError("ModelConfig.temporal_kernel must be odd so frames stay aligned.")
        if not (self.use_video_text or self.use_wti or self.use_triplet or self.training_free):
            raise ConfigError(
                "ModelConfig: every score term is off; turn on use_video_text, use_wti or "
                "use_triplet."
            )
        for name in ("video_text", "wti", "triplet"):
            if getattr(self, f"use_{name}") and getattr(self, f"weight_{name}") <= 0:
                raise ConfigError(f"ModelConfig.weight_{name} must be > 0 while use_{name} is on.")
        if self.training_free and self.su_hub_correction > 0:
            raise ConfigError("ModelConfig.su_hub_correction needs clips' statistics from training; "
                              "set it to 0 for training-free scoring.")
        if self.training_free and self.needs_training:
            raise ConfigError(
                "ModelConfig.training_free scores with a pretrained CLIP only; turn off use_mra, "
                "use_decoder, use_wti and use_triplet (use ModelConfig.training_free_preset)."
            )

    @property
    def needs_training(self) -> bool:
        """True when a module with new, learned parameters is on."""
        return self.use_mra or self.use_decoder or self.use_wti or self.use_triplet

    @classmethod
    def plain_clip(cls, **overrides) -> "ModelConfig":
        """Mean-pooled CLIP: only the video-text cosine, no new modules."""
        off = dict(use_mra=False, use_su=False, use_decoder=False, use_wti=False, use_triplet=False)
        return cls(**{**off, **overrides})

    @classmethod
    def training_free_preset(cls, **overrides) -> "ModelConfig":
        """Pretrained CLIP without fine-tuned weights: prompt + SU similarities (the app's default)."""
        return cls.plain_clip(**{"use_su": True, "training_free": True, **overrides})

    def to_dict(self) -> dict:
        """Plain JSON-able dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Rebuild from :meth:`to_dict` output; unknown keys raise :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"A model config must be a JSON object, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"Unknown model config key(s) {', '.join(map(repr, unknown))}; "
                f"known keys are: {', '.join(sorted(known))}."
            )
        try:
            return cls(**data)
        except TypeError as err:
            raise ConfigError(f"Malformed model config: {err}") from err
