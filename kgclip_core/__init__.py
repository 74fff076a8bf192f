"""KG-CLIP: knowledge-graph-guided video-language learning for fine-grained action recognition."""

from kgclip_core.errors import KGClipError

__all__ = ["KGClipError", "Predictor", "PredictorConfig", "Prediction"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that `import kgclip_core` (e.g. for the KG or labels alone) does not load torch.
    if name in {"Predictor", "PredictorConfig", "Prediction"}:
        from kgclip_core import predictor

        return getattr(predictor, name)
    raise AttributeError(name)
