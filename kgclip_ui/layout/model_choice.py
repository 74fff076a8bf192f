"""The header: the title, the model choice, the banner saying what the model is, and the
warm-up status line."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from kgclip_core.predictor import RANDOM_WEIGHTS_WARNING
from kgclip_core.warmup import Warmup
from kgclip_ui.models import ModelOption


@dataclass
class Header:
    """The model choice, its banner and the warm-up status line."""

    model: gr.Radio
    banner: gr.Markdown | None  # None on random weights: that warning never changes
    warm_status: gr.Markdown | None
    warm_timer: gr.Timer | None


def header_panel(options: list[ModelOption], warmup: Warmup | None) -> Header:
    """The title, the model choice (shown when there are several) and what the model is."""
    first = options[0]
    gr.Markdown("# KG-CLIP\nUpload a short clip: the model names the action, shows where it looked and "
                "which knowledge-graph concepts matched.")
    model = gr.Radio([o.title for o in options], value=first.title, label="Model", elem_id="model-choice",
                     visible=len(options) > 1)
    if first.predictor.backbone.random_weights:
        gr.Markdown(f"**Model:** {first.title}\n\n## ⚠️ Random weights\n{first.banner or RANDOM_WEIGHTS_WARNING}",
                    elem_id="random-weights-warning")
        banner = None
    else:
        gr.Markdown(f"**Model:** {first.title}", visible=len(options) == 1)
        banner = gr.Markdown(first.banner, elem_id="model-notice", visible=bool(first.banner))
    if warmup is None:
        return Header(model, banner, None, None)
    return Header(model, banner, gr.Markdown(warmup.status(), elem_id="warmup-status"),
                  gr.Timer(1.0, active=not warmup.done))
