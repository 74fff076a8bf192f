"""The timeline's events: make a clip's timeline (on the GPU under ZeroGPU, cancelled by a new
upload like Recognise), and explain the segment a click picked in every result panel."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go

from kgclip_core import explain
from kgclip_core.budget import CancelToken
from kgclip_core.errors import KGClipError
from kgclip_core.labels import LabelSet
from kgclip_core.prediction import Prediction, Timeline
from kgclip_core.timeline import segment_prediction, timeline
from kgclip_ui.common import check_clip_and_model, gpu, refusal, run_cancellable, user_error
from kgclip_ui.handlers.clip import resolve_labels, result_views
from kgclip_ui.models import ModelOption

PICKED = re.compile(r"(\d{1,6})#\d{1,12}")  # what the page's script puts in the hidden box: "index#click"


@dataclass
class TimelineSession:
    """A browser session's timeline, and what made it (a click on a segment explains it alike)."""

    line: Timeline
    video: str
    labels: LabelSet
    model: str
    top_k: int


class TimelineEvents:
    """Timelines and their segments' explanations with the chosen model."""

    def __init__(self, models: dict[str, ModelOption]) -> None:
        self.models = models
        self._timeline_on_gpu = gpu(self._timeline)
        self._segment_on_gpu = gpu(self._segment)

    def _timeline(self, model: str, video: str, labels: LabelSet, top_k: int, progress: gr.Progress,
                  cancel: CancelToken) -> Timeline:
        def reading(done: float, total: float) -> None:
            progress(done / total if total else 0.0, desc=f"Windows done: {done:.0f} of {total:.0f} s of the clip")

        def embedding(done: int, total: int) -> None:
            progress((done, total), desc="Embedding the label set (first time only)", unit="texts")

        return timeline(self.models[model].predictor, video, labels, top_k, progress=reading,
                        class_progress=embedding, cancel=cancel)

    def _segment(self, session: TimelineSession, segment: int, cancel: CancelToken) -> Prediction:
        return segment_prediction(self.models[session.model].predictor, session.video, session.line, segment,
                                  session.labels, session.top_k, cancel=cancel)

    async def make(self, video: str | None, label_set: str, custom: str, top_k: int, model: str,
                   progress: gr.Progress = gr.Progress()) -> tuple[go.Figure, str, TimelineSession]:
        """The clip's timeline: its chart, its segments in words, and the session's timeline."""
        return await run_cancellable(partial(self._make, video, label_set, custom, top_k, model, progress))

    def _make(self, video: str | None, label_set: str, custom: str, top_k: int, model: str, progress: gr.Progress,
              cancel: CancelToken) -> tuple[go.Figure, str, TimelineSession]:
        check_clip_and_model(video, model, self.models)
        try:
            labels = resolve_labels(self.models[model].predictor, label_set, custom)
            line = self._timeline_on_gpu(model, video, labels, int(top_k), progress, cancel)
        except KGClipError as err:
            raise user_error(err, video) from err
        return (explain.timeline_chart(line), explain.timeline_markdown(line),
                TimelineSession(line, video, labels, model, int(top_k)))

    async def explain_segment(self, session: TimelineSession | None, picked: str | None, opacity: float) -> tuple:
        """Every result panel for the picked segment (its surest window, fully explained), and the new session."""
        return await run_cancellable(partial(self._explain_segment, session, picked, opacity))

    def _explain_segment(self, session: TimelineSession | None, picked: str | None, opacity: float,
                         cancel: CancelToken) -> tuple:
        if session is None:
            raise refusal("Make the clip's timeline first; a click on one of its segments explains it.")
        match = PICKED.fullmatch(picked or "")
        if match is None or int(match[1]) >= len(session.line.segments):
            raise refusal("Click one of the timeline's segments.")
        index = int(match[1])
        try:
            pred = self._segment_on_gpu(session, index, cancel)
        except KGClipError as err:
            raise user_error(err, session.video) from err
        seg = session.line.segments[index]
        clip = f"{Path(session.video).name}, segment {index + 1} ({seg.start:.1f}-{seg.end:.1f} s)"
        return result_views(pred, session.labels, opacity, session.model, clip)


def cleared_timeline() -> tuple[None, str, None, None]:
    """No timeline: a new clip clears the previous clip's (its chart, words, state and report)."""
    return None, "", None, None
