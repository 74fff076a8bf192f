"""The facade the app, the CLI and the tests use: a clip and a label set in, a Prediction out.

``Prediction`` is a plain dataclass holding everything the UI shows; no Gradio types here.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kgclip_core.backbone import BackboneConfig, ClipBackbone, load_backbone
from kgclip_core.errors import LabelError
from kgclip_core.labels import LabelSet, load_label_set
from kgclip_core.prompts import class_prompts
from kgclip_core.video import VideoInfo, read_clip

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = (
    "This model runs on RANDOM weights (no pretrained weights could be loaded): predictions are "
    "meaningless. Connect to the internet once, pass a local weights file, or load a trained checkpoint."
)


@dataclass
class PredictorConfig:
    """How the Predictor samples clips and which backbone it runs."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    num_frames: int = 8
    short_side: int = 256
    top_k: int = 5


@dataclass
class Prediction:
    """Everything known about one clip's prediction, ready to display or serialise."""

    labels: list[str]
    scores: list[float]
    class_indices: list[int]
    label_set: str
    frame_indices: list[int]
    timestamps: list[float]
    frames: np.ndarray = field(repr=False)
    video: VideoInfo
    model: str
    random_weights: bool
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict (frames left out)."""
        out = asdict(self)
        out.pop("frames")
        return out


class Predictor:
    """Zero-shot (or fine-tuned) action recognition of a clip over a label set."""

    def __init__(self, backbone: ClipBackbone, cfg: PredictorConfig | None = None) -> None:
        self.backbone = backbone.eval()
        self.cfg = cfg or PredictorConfig(backbone=backbone.cfg)
        self._class_cache: OrderedDict[tuple[str, tuple[str, ...]], torch.Tensor] = OrderedDict()

    @classmethod
    def from_config(cls, cfg: PredictorConfig) -> Predictor:
        """Load the backbone described by ``cfg`` (raises WeightsError with what to do)."""
        return cls(load_backbone(cfg.backbone), cfg)

    @property
    def model_name(self) -> str:
        b = self.backbone.cfg
        return f"{b.model_name} ({'random weights' if self.backbone.random_weights else b.pretrained})"

    def class_embeddings(self, label_set: LabelSet) -> torch.Tensor:
        """Normalised prompt-ensembled class embeddings [C,D], kept in memory per label set."""
        key = (label_set.name, label_set.classes)
        if key not in self._class_cache:
            prompts = class_prompts(label_set.display_names)
            flat = [p for group in prompts for p in group]
            emb = F.normalize(self.backbone.encode_text(flat), dim=-1)
            emb = emb.view(len(prompts), len(prompts[0]), -1).mean(dim=1)
            self._class_cache[key] = F.normalize(emb, dim=-1)
            while len(self._class_cache) > 8:
                self._class_cache.popitem(last=False)
        return self._class_cache[key]

    @torch.no_grad()
    def predict(self, video_path: str | Path, labels: str | Sequence[str] | LabelSet = "kinetics400",
                top_k: int | None = None) -> Prediction:
        """Classify one clip. ``labels``: a built-in set name, a label file, a list, or a LabelSet."""
        label_set = labels if isinstance(labels, LabelSet) else load_label_set(labels)
        top_k = top_k or self.cfg.top_k
        if top_k < 1:
            raise LabelError("top_k must be at least 1.")
        clip = read_clip(video_path, self.cfg.num_frames, short_side=self.cfg.short_side)
        frames = clip.frames[0]
        images = self.backbone.preprocess(frames)
        frame_emb, _ = self.backbone.encode_frames(images)
        video_emb = F.normalize(F.normalize(frame_emb, dim=-1).mean(dim=0), dim=-1)
        logits = self.backbone.logit_scale * self.class_embeddings(label_set) @ video_emb
        probs = logits.softmax(dim=-1)
        k = min(top_k, len(label_set))
        top = probs.topk(k)
        return Prediction(
            labels=[label_set.display_names[i] for i in top.indices.tolist()],
            scores=top.values.tolist(),
            class_indices=top.indices.tolist(),
            label_set=label_set.name,
            frame_indices=clip.indices[0].tolist(),
            timestamps=clip.timestamps[0].tolist(),
            frames=frames,
            video=clip.info,
            model=self.model_name,
            random_weights=self.backbone.random_weights,
            warnings=[RANDOM_WEIGHTS_WARNING] if self.backbone.random_weights else [],
        )
