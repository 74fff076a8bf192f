"""The clip's events: an example picked, a webcam recording taken, a new clip shown, and
Recognise (on the GPU under ZeroGPU) filling every result panel.

Recognise and a new clip's playable copy run as cancellable work (``common.run_cancellable``):
the decode (and the copy) in a child process that a cancel or the time limit kills, so a new
upload, which cancels the run, stops its work too, and the worker slot is freed only then.
"""

from __future__ import annotations

import shutil
import time
from functools import partial
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from kgclip_core import explain
from kgclip_core.budget import CancelToken, Deadline
from kgclip_core.errors import Cancelled, KGClipError, LabelError
from kgclip_core.explain.text import escape_markdown
from kgclip_core.labels import LabelSet, parse_labels
from kgclip_core.prediction import Prediction
from kgclip_core.predictor import Predictor
from kgclip_core.isolated import run_isolated
from kgclip_core.video_out import PREVIEW_TIME_LIMIT_S, Playable, playable_copy
from kgclip_ui.common import (CHECKPOINT, CUSTOM, EXAMPLES, RECOGNISE, RECOGNISING, Session, check_clip_and_model, gpu,
                              run_cancellable, user_error)
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

    def _predict_clip(self, model: str, video: str, labels: LabelSet, top_k: int, progress: gr.Progress,
                      cancel: CancelToken) -> Prediction:
        def embedding(done: int, total: int) -> None:
            progress((done, total), desc="Embedding the label set (first time only)", unit="texts")

        return self.models[model].predictor.predict(video, labels=labels, top_k=top_k, progress=embedding,
                                                    cancel=cancel)

    async def predict(self, video: str | None, label_set: str, custom: str, top_k: int, opacity: float, model: str,
                      progress: gr.Progress = gr.Progress()) -> tuple:
        """Recognise the clip; every result panel's content, and the new session. A cancel (a new
        upload) stops the work, the decode's child process included."""
        return await run_cancellable(partial(self._recognise, video, label_set, custom, top_k, opacity, model,
                                             progress))

    def _recognise(self, video: str | None, label_set: str, custom: str, top_k: int, opacity: float, model: str,
                   progress: gr.Progress, cancel: CancelToken) -> tuple:
        check_clip_and_model(video, model, self.models)
        try:
            labels = resolve_labels(self.models[model].predictor, label_set, custom)
            # The Predictor reads the clip before it embeds the label set, so a bad file is refused at once.
            progress(0.0, desc="Decoding the clip, then embedding the label set (first time only)")
            pred = self._predict_on_gpu(model, video, labels, int(top_k), progress, cancel)
            if cancel.cancelled:  # nobody waits for the panels any more
                raise Cancelled("The request was cancelled before its panels were drawn.")
        except KGClipError as err:
            raise user_error(err, video) from err
        progress(0.8, desc="Rendering the explanations")
        return result_views(pred, labels, opacity, model, Path(video).name)


def result_views(pred: Prediction, labels: LabelSet, opacity: float, model: str, clip: str) -> tuple:
    """Every result panel's content for ``pred`` of ``clip`` (its name for people; escaped here),
    in ``ResultPanels.outputs`` order, and the new session."""
    return (
        explain.topk_bar_chart(pred),
        *explanation_views(pred, opacity, labels),
        gr.update(choices=[(label, name) for label, name in zip(pred.labels, pred.class_names)],
                  value=pred.class_names[0]),
        f"**Result for** {escape_markdown(clip)}: {escape_markdown(model)}, label set {escape_markdown(labels.name)}",
        details(pred),
        Session(pred, labels, model),
    )


def cleared_results(chart: go.Figure | None = None) -> tuple:
    """Every result panel empty (the chart: ``chart``), in ``ResultPanels.outputs`` order, and no session."""
    empty_choice = gr.update(choices=[], value=None)
    return (chart, *cleared_explanations(), empty_choice, "", None, None)


def _waiting_chart() -> go.Figure:
    """The chart's place while a clip waits for Recognise, saying so.

    It also has the page load plotly's script (4.6 MB, read at the page's first chart) before
    the result comes: read with the result, it held up the page for a second or more, and with
    it the knowledge-graph view, whose frame runs on the page's thread.
    """
    fig = go.Figure()
    fig.add_annotation(text=f"Press {RECOGNISE}: the clip's likeliest actions appear here", showarrow=False,
                       xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_layout(height=120, xaxis_visible=False, yaxis_visible=False, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def ready() -> gr.Button:
    """The Recognise button, ready for a click."""
    return gr.Button(RECOGNISE, interactive=True)


def busy() -> tuple[gr.Button, None]:
    """The Recognise button while a run is on (it takes no click), and no report of the results it replaces."""
    return gr.Button(RECOGNISING, interactive=False), None


def _playable(video: str, cancel: CancelToken) -> Playable:
    """The upload's playable copy, made in a child process that a cancel, or twice the copy's own
    time limit (its decoder may be stuck in one frame), kills."""
    deadline = Deadline.after(2 * PREVIEW_TIME_LIMIT_S, cancel)
    try:
        return run_isolated(playable_copy, video, check=partial(deadline.check, "making the playable copy"),
                            what="Making the playable copy")
    except KGClipError:
        return Playable(None, f"No playable copy of {Path(video).name} could be made in time; Recognise still "
                              "reads it, and its sampled frames show beside it.")


async def show_clip(video: str | None) -> tuple:
    """A new clip: its player (a playable copy when browsers cannot play the file), a note,
    every result of the previous clip cleared, and the Recognise button ready."""
    shown = await run_cancellable(partial(_playable, video)) if video else None
    player, note = (shown.path, shown.note) if shown else (None, "")
    chart = _waiting_chart() if video else None
    return (player, note, *cleared_results(chart), [], "", None, ready())


def use_recording(recording: dict | None) -> str | dict:
    """A webcam recording (Gradio's upload, unprocessed), for the clip box: from there it goes
    the way of any upload (the same checks, limits and browser-playable copy). Named after the
    webcam and the time, not the browser's "sample.webm", since the result line names it."""
    if not recording or not recording.get("path"):
        return gr.skip()  # the recorder cleared: the clip box keeps its clip
    path = Path(recording["path"])
    named = path.with_name(f"webcam-{time.strftime('%H%M%S')}{path.suffix}")
    shutil.copyfile(path, named)
    return str(named)


def pick_example(event: gr.SelectData) -> str:
    """The example clip clicked among the thumbnails, for the clip box."""
    return str(EXAMPLES[event.index])
