"""Dense text-to-patch maps on an open_clip ViT: where a text is in each frame, by several methods.

The methods know a backbone, images and text embeddings, not predictions or the app (the Captum
and pytorch-grad-cam shape: one module per family over shared helpers). The Predictor calls them
on every prediction, the experiments compare them; ``kgclip_core.explain`` only draws what they
produced.

- ``methods``: the registry (:data:`HEATMAP_METHODS`) and :func:`text_maps`, the one entry point;
- ``attention``: the last ViT blocks run step by step (ClearCLIP, SCLIP, MaskCLIP; the recorder of
  a prediction's own queries, keys and values);
- ``gradient``: LeGrad and Grad-ECLIP; ``integrated_gradients``: captum's, on a text's match;
  ``occlusion``: one patch hidden at a time.
"""

from kgclip_core.heatmaps.methods import (
    ATTENTION_PATH,
    DEFAULT_HEATMAP_METHOD,
    HEATMAP_METHODS,
    PATCH_COSINE,
    SINGLE_PASS,
    check_method,
    recorder,
    shared_concept,
    text_maps,
)

__all__ = ["ATTENTION_PATH", "DEFAULT_HEATMAP_METHOD", "HEATMAP_METHODS", "PATCH_COSINE", "SINGLE_PASS",
           "check_method", "recorder", "shared_concept", "text_maps"]
