"""The clip and its results: the upload, its player and the example clips, the label set,
Recognise, the predicted-action picker, which clip the results are for, the top-k chart and
the prediction as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import gradio as gr
import numpy as np

from kgclip_core.video import EXTENSIONS, read_clip
from kgclip_ui.common import CUSTOM_BOX, EXAMPLES, RECOGNISE
from kgclip_ui.layout.explanations import ExplanationPanels

EXAMPLE_THUMB_PX = 112
# An example's name wraps inside its label rather than being cut ("punch with right …" on a phone).
EXAMPLES_CSS = "#examples .caption-label { white-space: normal; }"


@dataclass
class ClipPanel:
    """The clip, the label set and the Recognise button; then the predicted-action picker."""

    video: gr.File
    webcam: gr.Video  # a recording goes into the clip box, and on from there as an upload
    player: gr.Video
    player_note: gr.Markdown
    label_set: gr.Dropdown
    custom: gr.Textbox
    top_k: gr.Slider
    run: gr.Button
    examples: gr.Gallery | None  # None when no example clips ship with the app
    open_action: gr.Dropdown
    open_button: gr.Button


@dataclass
class ResultPanels:
    """Every panel a prediction fills, in the order ``Recogniser.predict`` returns them."""

    chart: gr.Plot
    explanations: ExplanationPanels
    result_for: gr.Markdown
    details: gr.JSON

    def outputs(self, open_action: gr.Dropdown) -> list:
        """The components ``Recogniser.predict`` fills, in its order (the session state comes last)."""
        return [self.chart, *self.explanations.outputs(), open_action, self.result_for, self.details]


def clip_panel(choices: list[str], default_set: str) -> ClipPanel:
    """The clip upload and its player, label set, custom labels, top-k, Recognise, examples and
    predicted-action picker.

    The upload is a file box: Gradio's video widget takes video/* only, so no GIF, and plays
    only what the browser plays; the player beside it shows a playable copy when needed. The
    webcam is that widget, for recording only.
    """
    video = gr.File(label="Clip: a video or an animated GIF", file_types=list(EXTENSIONS), elem_id="clip",
                    height=120)
    webcam = webcam_panel()
    player = gr.Video(label="Your clip", interactive=False, elem_id="player", height=260)
    player_note = gr.Markdown(elem_id="player-note")
    label_set = gr.Dropdown(choices, value=default_set, label="Label set", elem_id="label-set")
    custom = gr.Textbox(label=CUSTOM_BOX, lines=1, placeholder="playing guitar, riding a horse, brushing teeth",
                        elem_id="custom-labels")
    top_k = gr.Slider(1, 10, value=5, step=1, label="Top-k")
    run = gr.Button(RECOGNISE, variant="primary", elem_id="recognise")
    examples = examples_panel()
    with gr.Row():
        open_action = gr.Dropdown([], label="Predicted action", scale=3, elem_id="predicted-action")
        open_button = gr.Button("Show its concepts", scale=1, elem_id="open-in-kg")
    return ClipPanel(video, webcam, player, player_note, label_set, custom, top_k, run, examples, open_action,
                     open_button)


def webcam_panel() -> gr.Video:
    """A webcam recorder, folded away until wanted.

    Not mirrored: Gradio would flip the recording to match a mirrored preview, and the labels
    name sides ("wave right hand"). No sound: the model does not hear, and the browser then asks
    for the camera alone.
    """
    with gr.Accordion("Or record a clip with your webcam", open=False, elem_id="webcam-box"):
        return gr.Video(label="Webcam: record, stop, then Recognise", sources=["webcam"], include_audio=False,
                        webcam_options=gr.WebcamOptions(mirror=False), height=260, elem_id="webcam")


@lru_cache(maxsize=1)
def _example_thumbnails() -> tuple[tuple[np.ndarray, str], ...]:
    """(middle frame, action name) of each example clip, for a captioned thumbnail."""
    return tuple((read_clip(path, num_frames=1, short_side=EXAMPLE_THUMB_PX).frames[0, 0],
                  path.stem.replace("_", " ")) for path in EXAMPLES)


def examples_panel() -> gr.Gallery | None:
    """The example clips as captioned thumbnails to click (None when there are none)."""
    if not EXAMPLES:
        return None
    return gr.Gallery(list(_example_thumbnails()), label="Example clips (stick-figure actions): click one",
                      columns=2, height="auto", allow_preview=False, show_label=True, elem_id="examples")


def result_panel() -> tuple[gr.Markdown, gr.Plot]:
    """Which clip the results are for, and the top-k chart."""
    result_for = gr.Markdown(elem_id="result-for")
    chart = gr.Plot(label="Predicted actions", elem_id="topk-chart")
    return result_for, chart


def details_panel() -> gr.JSON:
    """The prediction as JSON."""
    with gr.Accordion("Details (JSON)", open=False):
        return gr.JSON(label="Details")
