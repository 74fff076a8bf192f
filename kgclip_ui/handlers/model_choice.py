"""The model choice's events: switching model, and the warm-up status line following its progress."""

from __future__ import annotations

import gradio as gr

from kgclip_core.warmup import Warmup
from kgclip_ui.models import ModelOption, default_labels


class ModelChoice:
    """The handlers of the header: the chosen model's banner and label set, and the warm-up line."""

    def __init__(self, models: dict[str, ModelOption], warmup: Warmup | None) -> None:
        self.models = models
        self.warmup = warmup

    def choose_model(self, model: str) -> tuple[str, dict]:
        """The chosen model's banner, and its own label set selected."""
        option = self.models[model]
        return option.banner, gr.update(value=default_labels(option))

    def warm_view(self) -> tuple[str, gr.Timer]:
        """The warm-up's status line, and its timer, stopped once the warm-up is done."""
        return self.warmup.status(), gr.Timer(active=not self.warmup.done)
