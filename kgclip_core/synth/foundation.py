"""The synthetic world's pretrained CLIP (``checkpoints/foundation``) as a training-free Predictor.

The weights are an ordinary open_clip state dict of the ``kgclip-synth`` architecture, so
they load the way a user's local CLIP weights file does; on top of them the Predictor runs
training-free, exactly as on OpenAI weights: prompt similarity plus the class's
best-matching semantic units. Its class text is the knowledge graph's description, which
recognised the stick-figure actions far better than name prompts (docs/TESTBED.md).
"""

from __future__ import annotations

from pathlib import Path

from kgclip_core.backbone import BackboneConfig
from kgclip_core.model.concept_detector import FILE_NAME as DETECTOR_FILE
from kgclip_core.model.config import ModelConfig
from kgclip_core.predictor import Predictor, PredictorConfig

MODEL = "kgclip-synth"
CLASS_TEXT = "description"
# The shipped foundation's map method. Pretrained with the region-text loss, its own patch
# tokens carry the part a movement names; the patch-token cosine after CLIP Surgery's feature
# surgery points at it best (90.4% on the development split, the plain cosine 85.6%): what all
# concepts share lights up the background in the plain one. The attention-path methods (SCLIP
# and kin) replace the path that loss trained (docs/EXPLAIN.md, heatmap comparison).
HEATMAP_METHOD = "surgery"


def foundation_predictor(weights: str | Path, device: str = "auto", num_frames: int = 8,
                         heatmap_method: str = HEATMAP_METHOD) -> Predictor:
    """A training-free Predictor on the foundation's ``weights`` file, for the synthetic label sets,
    with the concept detector beside the weights when there is one."""
    model = ModelConfig.training_free_preset(backbone=MODEL, pretrained=str(weights), num_frames=num_frames,
                                             class_text=CLASS_TEXT)
    detector = Path(weights).parent / DETECTOR_FILE
    cfg = PredictorConfig(backbone=BackboneConfig(MODEL, str(weights), device=device), model=model,
                          num_frames=num_frames, heatmap_method=heatmap_method,
                          concept_detector=str(detector) if detector.is_file() else None)
    return Predictor.from_config(cfg, labels="synthetic")
