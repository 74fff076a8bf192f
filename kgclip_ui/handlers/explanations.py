"""The explanation panels' events: what a prediction shows in each panel, the comparison with a
rival the user picks, the heatmap picker redrawing the frames, and the deep explanation (Integrated Gradients, on the GPU under ZeroGPU)."""

from __future__ import annotations

from functools import partial

import gradio as gr
import pandas as pd

from kgclip_core import explain
from kgclip_core.budget import CancelToken
from kgclip_core.errors import KGClipError
from kgclip_core.explain.text import escape_markdown
from kgclip_core.labels import LabelSet
from kgclip_core.prediction import Prediction
from kgclip_ui.common import Session, gpu, refusal, run_cancellable, user_error
from kgclip_ui.models import ModelOption

NO_WTI = "*This model has no word-frame interaction (WTI) head: load a fine-tuned checkpoint to see the alignment.*"


def heatmap_gallery(pred: Prediction | None, kind: str | None, which: str | None, opacity: float) -> list:
    """The frames of ``pred`` with map ``which`` of ``kind`` (its first entry is the mean of all)."""
    if pred is None:
        return []
    names = explain.heatmap_choices(pred, kind) if kind in explain.HEATMAP_KINDS else []
    index = names.index(which) - 1 if which in names[1:] else None
    maps = explain.heatmaps(pred, kind, index) if names else None
    caption = explain.heatmap_caption(pred, kind, index) if kind in explain.HEATMAP_KINDS else None
    return explain.heatmap_gallery(pred, maps, float(opacity), caption=caption)


def contrast_view(pred: Prediction) -> tuple[str, pd.DataFrame]:
    """"Not sure" when no label fits, and why the top action and not its compared rival (escaped)."""
    lines = [f"**{escape_markdown(note)}**" for note in [explain.unsure_note(pred)] if note]
    if pred.contrast is not None:
        lines.append(f"**Why {escape_markdown(pred.contrast.label)} and not {escape_markdown(pred.contrast.rival)}?** "
                     f"{escape_markdown(explain.contrast_summary(pred.contrast))}")
    rows = explain.contrast_rows(pred.contrast) if pred.contrast is not None else []
    return "\n\n".join(lines), pd.DataFrame(rows, columns=explain.CONTRAST_COLUMNS)


def explanation_views(pred: Prediction, opacity: float, labels: LabelSet) -> tuple:
    """Every explanation panel's content for a new prediction over ``labels``, in
    ``ExplanationPanels.outputs`` order; the first map is the most telling concept the clip shows."""
    # Every kind is offered: a model without MRA shows plain frames captioned that it has no regions.
    kinds = list(explain.HEATMAP_KINDS)
    kind, which = explain.first_map(pred)
    names = explain.heatmap_choices(pred, kind) if kind else []
    alignment = explain.alignment_heatmap(pred)
    rivals = [n for n in labels.display_names if n != pred.labels[0]]
    return (
        gr.update(choices=kinds, value=kind),
        gr.update(choices=names, value=which),
        heatmap_gallery(pred, kind, which, opacity),
        explain.evidence_table(pred),
        explain.evidence_note(pred),
        explain.units_table(pred),
        explain.unit_timeline(pred),
        alignment,
        gr.update(value="" if alignment else NO_WTI),
        explain.prediction_graph_html(pred),
        *_contrast_outputs(pred, rivals),
    )


def _contrast_outputs(pred: Prediction, rivals: list[str]) -> tuple:
    note, table = contrast_view(pred)
    rival = pred.contrast.rival if pred.contrast is not None else None
    return note, gr.update(choices=rivals, value=rival), table


def cleared_explanations() -> tuple:
    """Every explanation panel empty, in ``ExplanationPanels.outputs`` order."""
    empty_choice = gr.update(choices=[], value=None)
    return (empty_choice, empty_choice, [], None, "", None, None, None, "", "", "", empty_choice, None)


def heatmaps(session: Session | None, kind: str | None, which: str | None, opacity: float) -> list:
    """The frames with the chosen map of the session's prediction."""
    return heatmap_gallery(session.pred if session else None, kind, which, opacity)


def heatmap_kind(session: Session | None, kind: str | None, opacity: float) -> tuple[dict, list]:
    """The maps of the chosen kind, and the frames with the first of them."""
    names = explain.heatmap_choices(session.pred, kind) if session and kind in explain.HEATMAP_KINDS else []
    which = names[0] if names else None
    return gr.update(choices=names, value=which), heatmaps(session, kind, which, opacity)


class ContrastChoice:
    """The top action against a rival the user picks, with the model that predicted it."""

    def __init__(self, models: dict[str, ModelOption]) -> None:
        self.models = models

    def contrast(self, session: Session | None, rival: str | None, opacity: float) -> tuple:
        """Why the session's top action and not ``rival``: the note, the table, and the rival's maps
        offered among the heatmaps (the session's prediction now contrasts with it, the report too)."""
        if session is None:
            raise refusal("Recognise a clip first; the comparison explains its top prediction.")
        if not rival:
            raise refusal("Pick an action to compare the top prediction with.")
        try:
            session.pred.contrast = self.models[session.model].predictor.contrast(session.pred, rival, session.labels)
        except KGClipError as err:
            raise user_error(err) from err
        note, table = contrast_view(session.pred)
        return note, table, gr.update(choices=list(explain.HEATMAP_KINDS))


class DeepExplanation:
    """Integrated Gradients of a session's top class with the model that predicted it."""

    def __init__(self, models: dict[str, ModelOption]) -> None:
        self.models = models
        self._attribute_on_gpu = gpu(self._attribute)

    def _attribute(self, session: Session, steps: int, progress: gr.Progress,
                   cancel: CancelToken) -> explain.Attribution:
        # Pass gr.Progress itself into the GPU call, not a closure over it (pickled on ZeroGPU).
        return explain.integrated_gradients(self.models[session.model].predictor, session.pred, session.labels,
                                            steps=steps,
                                            progress=lambda fraction, message: progress(fraction, desc=message),
                                            cancel=cancel)

    async def deep_explanation(self, session: Session | None, steps: int, opacity: float,
                               progress: gr.Progress = gr.Progress()) -> tuple[list, str]:
        """Integrated Gradients of the session's top class, on its frames, and a note; a new clip
        cancels it, and its worker is free once its passes have stopped."""
        return await run_cancellable(partial(self._deep_explanation, session, steps, opacity, progress))

    def _deep_explanation(self, session: Session | None, steps: int, opacity: float, progress: gr.Progress,
                          cancel: CancelToken) -> tuple[list, str]:
        if session is None:
            raise refusal("Recognise a clip first; the deep explanation explains its top prediction.")
        try:
            attr = self._attribute_on_gpu(session, int(steps), progress, cancel)
        except KGClipError as err:
            raise user_error(err) from err
        caption = f"Integrated Gradients for \"{attr.label}\": bright = the pixels that raised its score most"
        return (explain.heatmap_gallery(session.pred, attr.maps, float(opacity), caption=caption),
                explain.attribution_note(attr))
