"""Explanations of a prediction and their rendering, from the model's own intermediate results.

``maps``: the model's region and semantic-unit maps placed on the sampled frames, any text's map
by any method, captions. ``textmaps``: the heatmap methods (patch cosine, the attention-path
methods of ``attention``, the gradient methods of ``gradient``, Integrated Gradients).
``attribution``: opt-in Integrated Gradients on the frames (several passes, with progress).
``overlay``: matplotlib heatmap overlays on frames. ``figures``: plotly charts and the unit
table. ``graph``: the knowledge-graph views of a prediction and of one action.
"""

from kgclip_core.explain.attribution import Attribution, attribution_note, integrated_gradients
from kgclip_core.explain.figures import (
    alignment_heatmap, evidence_note, evidence_table, topk_bar_chart, unit_timeline, units_table,
)
from kgclip_core.explain.graph import action_markdown, prediction_graph_html
from kgclip_core.explain.maps import (
    HEATMAP_KINDS, heatmap_caption, heatmap_choices, heatmaps, region_heatmaps, text_heatmaps, to_frame, unit_heatmaps,
)
from kgclip_core.explain.overlay import COLORMAP, heatmap_figure, heatmap_gallery, heatmap_panel, overlay
from kgclip_core.explain.textmaps import DEFAULT_HEATMAP_METHOD, HEATMAP_METHODS, text_maps

__all__ = [
    "Attribution", "attribution_note", "integrated_gradients", "alignment_heatmap", "evidence_note", "evidence_table", "topk_bar_chart",
    "unit_timeline",
    "units_table", "action_markdown", "prediction_graph_html", "HEATMAP_KINDS", "heatmap_caption", "heatmap_choices",
    "heatmaps", "region_heatmaps", "text_heatmaps", "to_frame", "unit_heatmaps", "COLORMAP", "heatmap_figure",
    "heatmap_gallery", "heatmap_panel", "overlay", "DEFAULT_HEATMAP_METHOD", "HEATMAP_METHODS", "text_maps",
]
