"""The clip's events: an example picked, a new clip shown, and Recognise (on the GPU under
ZeroGPU) filling every result panel."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from kgclip_core import explain
from kgclip_core.errors import KGClipError, LabelError
from kgclip_core.explain.text import escape_markdown
from kgclip_core.labels import LabelSet, parse_labels
from kgclip_core.prediction import Prediction
from kgclip_core.predictor import Predictor
from kgclip_core.video_out import playable_copy
from kgclip_ui.common import CHECKPOINT, CUSTOM, EXAMPLES, RECOGNISE, RECOGNISING, Session, gpu, refusal, user_error
from kgclip_ui.handlers.explanations import cleared_explanations, explanation_views
from kgclip_ui.models import ModelOption


def resolve_labels(predictor: Predictor, label_set: str, custom: str) -> LabelSet:
    """The label set a menu choice names: the model's own, a built-in one, or the typed labels."""
    if label_set == CHECKPOINT:
        return predictor.resolve_labels(None)
    if label_set != CUSTOM:
        return predictor.resolve_labels(label_set)
    labels = parse_labels(custom)
    if len(labels) == 1:  # a softmax over one label is 100% whatever the clip shows
        raise LabelError(f"Only one label ({labels.classes[0]!r}): the model picks the best of the labels "
                         "given, so a single label always gets 100%. Type two or more, comma separated.")
    return labels


def details(pred: Prediction) -> dict:
    """The prediction as JSON, without the server's file path (a dict with a ``path`` reads as a file)."""
    shown = pred.to_dict()
    shown["video"]["file"] = Path(shown["video"].pop("path")).name
    return shown


class Recogniser:
    """Recognise a clip with the chosen model and fill every result panel."""

    def __init__(self, models: dict[str, ModelOption]) -> None:
        self.models = models
        self._predict_on_gpu = gpu(self._predict_clip)

    def _predict_clip(self, model: str, video: str, labels: LabelSet, top_k: int, progress: gr.Progress) -> Prediction:
        def embedding(done: int, total: int) -> None:
            progress((done, total), desc="Embedding the label set (first time only)", unit="texts")

        return self.models[model].predictor.predict(video, labels=labels, top_k=top_k, progress=embedding)

    def predict(self, video: str | None, label_set: str, custom: str, top_k: int, opacity: float, model: str,
                progress: gr.Progress = gr.Progress()) -> tuple:
        """Recognise the clip; every result panel's content, and the new session."""
        if not video:
            raise refusal("Upload a video clip or pick an example first.")
        if model not in self.models:
            raise refusal(f"Unknown model; choose one of: {', '.join(self.models)}.")
        try:
            labels = resolve_labels(self.models[model].predictor, label_set, custom)
            # The Predictor reads the clip before it embeds the label set, so a bad file is refused at once.
            progress(0.0, desc="Decoding the clip, then embedding the label set (first time only)")
            pred = self._predict_on_gpu(model, video, labels, int(top_k), progress)
        except KGClipError as err:
            raise user_error(err, video) from err
        progress(0.8, desc="Rendering the explanations")
        return (
            explain.topk_bar_chart(pred),
            *explanation_views(pred, opacity),
            gr.update(choices=[(label, name) for label, name in zip(pred.labels, pred.class_names)],
                      value=pred.class_names[0]),
            f"**Result for** {escape_markdown(Path(video).name)}: {escape_markdown(model)}, "
            f"label set {escape_markdown(labels.name)}",
            details(pred),
            Session(pred, labels, model),
        )


def cleared_results() -> tuple:
    """Every result panel empty, in ``ResultPanels.outputs`` order, and no session."""
    empty_choice = gr.update(choices=[], value=None)
    return (None, *cleared_explanations(), empty_choice, "", None, None)


def ready() -> gr.Button:
    """The Recognise button, ready for a click."""
    return gr.Button(RECOGNISE, interactive=True)


def busy() -> tuple[gr.Button, None]:
    """The Recognise button while a run is on (it takes no click), and no report of the results it replaces."""
    return gr.Button(RECOGNISING, interactive=False), None


def show_clip(video: str | None) -> tuple:
    """A new clip: its player (a playable copy when browsers cannot play the file), a note,
    every result of the previous clip cleared, and the Recognise button ready."""
    shown = playable_copy(video) if video else None
    return (shown.path if shown else None, shown.note if shown else "", *cleared_results(), [], "", None, ready())


def pick_example(event: gr.SelectData) -> str:
    """The example clip clicked among the thumbnails, for the clip box."""
    return str(EXAMPLES[event.index])
