"""Explanations of a finished prediction and their rendering: figures, overlays, the KG view, text.

Everything here reads a :class:`~kgclip_core.prediction.Prediction` (the methods that compute
dense maps live below the Predictor, in ``kgclip_core.heatmaps``). ``maps``: the model's region
and semantic-unit maps placed on the sampled frames, any text's map by any method, captions.
``attribution``: opt-in Integrated Gradients on the frames (several passes, with progress).
``overlay``: matplotlib heatmap overlays on frames. ``figures``: plotly charts and the unit
table. ``graph``: the knowledge-graph views of a prediction and of one action. ``why``: why the top
action and not its rival, and "not sure", in words. ``timeline``: a long clip's timeline as a chart.
"""

from __future__ import annotations

import importlib

# Each public name and the submodule that defines it. The submodules are imported on first use:
# matplotlib, plotly and pandas (the renderers' imports, about 2 s) are wanted only by the
# renderers a caller uses, and would otherwise delay a cold start's first result.
_EXPORTS = {
    "attribution": ("Attribution", "attribution_note", "integrated_gradients"),
    "figures": ("alignment_heatmap", "evidence_note", "evidence_rule", "evidence_table", "topk_bar_chart", "unit_timeline",
                "units_table"),
    "graph": ("action_markdown", "prediction_graph_html"),
    "maps": ("HEATMAP_KINDS", "first_map", "heatmap_caption", "heatmap_choices", "heatmaps", "region_heatmaps",
             "telling_concept", "text_heatmaps", "to_frame", "unit_heatmaps"),
    "why": ("CONTRAST_COLUMNS", "contrast_rows", "contrast_summary", "unsure_note"),
    "timeline": ("timeline_chart", "timeline_markdown"),
    # The blending function ``overlay`` shares its submodule's name: it is ``explain.overlay.overlay``.
    "overlay": ("COLORMAP", "heatmap_figure", "heatmap_gallery", "heatmap_panel"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = (*_EXPORTS, "text")
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    """The public names and the submodules, imported as they are first asked for (PEP 562)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")  # importing sets the attribute
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
