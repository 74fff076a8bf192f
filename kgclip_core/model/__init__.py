"""The KG-CLIP model: config, heads (MRA, SU selection, decoder, WTI, triplets), losses, checkpoints."""

from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import (
    ClassFeatures,
    ClassInputs,
    KGClipModel,
    ScoreOutput,
    VideoFeatures,
    build_model,
)

__all__ = [
    "ClassFeatures",
    "ClassInputs",
    "KGClipModel",
    "ModelConfig",
    "ScoreOutput",
    "VideoFeatures",
    "build_model",
]
