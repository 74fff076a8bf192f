"""What the areas of the UI share: the session state, the label-set menu's own entries, the
example clips, errors shown as toasts, the knowledge-graph cache, the ZeroGPU decorator and
handlers' work that a cancel stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import gradio as gr

from kgclip_core.budget import CancelToken, check_custom_cost
from kgclip_core.errors import KGClipError
from kgclip_core.explain.text import escape_html
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.labels import LabelSet, parse_labels
from kgclip_core.prediction import Prediction

# Hugging Face ZeroGPU: a GPU is attached only while a decorated call runs, and the call's
# arguments are pickled: a handler passes the model by title, never the model itself.
try:
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn: Callable) -> Callable:
        """Without ZeroGPU the model runs where the Predictor put it (CUDA when present, else CPU)."""
        return fn

REPO = Path(__file__).parent.parent
EXAMPLES_DIR = REPO / "assets" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.mp4"))
SESSION_TTL_S = 3600  # a session's prediction, and the reports made of it, last an hour
# Browser sessions whose state (the last prediction, and Gradio's copy of every panel's value) is
# kept; past it the least recently used session is dropped (gr.Blocks.launch's
# state_session_capacity). One holds about 2 MB with 8 frames, some 4 MB of RSS (docs/LIMITS.md).
MAX_SESSIONS = 64
T = TypeVar("T")
# The label-set menu's own entries, beside the built-in label sets.
CUSTOM = "custom (type below)"
CHECKPOINT = "the checkpoint's labels"
CUSTOM_BOX = "Custom labels (comma separated; Enter runs)"
RECOGNISE, RECOGNISING = "Recognise", "Recognising…"


@dataclass
class Session:
    """What one browser session keeps between events: the last prediction, its label set and model."""

    pred: Prediction
    labels: LabelSet
    model: str


def refusal(message: str) -> gr.Error:
    """An ordinary user error as a toast: no traceback in the server log, and escaped (Gradio
    renders a toast as HTML: a label like <img src=...> must stay text)."""
    return gr.Error(escape_html(message), print_exception=False)


def check_clip_and_model(video: str | None, model: str, models: Collection[str]) -> None:
    """The refusals a clip's handlers give before any work: no clip, or a model not offered."""
    if not video:
        raise refusal("Upload a video clip or pick an example first.")
    if model not in models:
        raise refusal(f"Unknown model; choose one of: {', '.join(models)}.")


def user_error(err: KGClipError, video: str | None = None) -> gr.Error:
    """A library error as a toast, the upload named by its file name (the server's folders are
    nobody's business)."""
    return refusal(str(err).replace(video, Path(video).name) if video else str(err))


def follow_typing(custom: str | None, label_set: str) -> str:
    """The label-set menu once labels are typed: custom (a box emptied leaves the menu alone)."""
    return CUSTOM if (custom or "").strip() else label_set


@lru_cache(maxsize=8)
def cached_graph(labels: str | tuple[str, ...]) -> KnowledgeGraph:
    """A label set's graph; typed label sets are parsed once, not on every click."""
    return KnowledgeGraph.for_label_set(labels if isinstance(labels, str) else list(labels))


def graph_key(label_set: str, custom: str) -> str | tuple[str, ...]:
    """The ``cached_graph`` key of a menu choice: its name, or the typed labels for custom."""
    if label_set != CUSTOM:
        return label_set
    labels = parse_labels(custom)
    check_custom_cost(labels)  # parsing a typed set costs in proportion to its text too
    return labels.classes


def action_choices(kg: KnowledgeGraph, actions: list[str]) -> list[tuple[str, str]]:
    """(display name, class name) pairs for a dropdown."""
    return [(kg.graph.nodes[kg.action_node(a)]["label"], a) for a in actions]


async def run_cancellable(work: Callable[[CancelToken], T]) -> T:
    """``work(token)`` in a worker thread, for an ``async`` handler. When Gradio cancels the event
    (a new upload cancels a run) the token is set, and this returns only once the work has
    stopped: Gradio frees the event's worker slot when its handler returns, so a slot is free
    only when its work has ended (a plain handler's thread runs on after a cancel)."""
    token = CancelToken()
    task = asyncio.ensure_future(asyncio.to_thread(work, token))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        token.cancel()
        while not task.done():
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:  # cancelled again: the work is still stopping
                continue
        task.exception()  # its error (Cancelled, most likely) is the cancel's, not news
        raise
