"""KG-CLIP web app: upload a clip, pick a label set, see what the model recognises and why.

A thin Gradio layout over ``kgclip_core``: every computation, figure and graph view comes
from the library (``kgclip_core.explain``, ``kgclip_core.kg.render``). Run ``python app.py
--help`` for the options; on Hugging Face Spaces it starts as it stands, and on ZeroGPU
hardware the model calls run under ``spaces.GPU``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import gradio as gr
import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse
from gradio.route_utils import FnIndexInferError

from kgclip_core import explain
from kgclip_core.budget import REQUEST_BUDGET_S, RequestLimits, check_custom_cost
from kgclip_core.cli import add_backbone_args, backbone_config, configure_cache
from kgclip_core.errors import KGClipError, LabelError, WeightsError
from kgclip_core.explain.text import escape_html, escape_markdown
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.kg.render import action_view
from kgclip_core.labels import LabelSet, builtin_label_sets, parse_labels
from kgclip_core.predictor import RANDOM_WEIGHTS_WARNING, Prediction, Predictor, PredictorConfig
from kgclip_core.report import write_report
from kgclip_core.synth.foundation import foundation_predictor
from kgclip_core.video import EXTENSIONS, read_clip
from kgclip_core.video_out import playable_copy
from kgclip_core.warmup import Warmup

try:  # Hugging Face ZeroGPU: a GPU is attached only while a decorated call runs.
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        """Without ZeroGPU the model runs where the Predictor put it (CUDA when present, else CPU)."""
        return fn

log = logging.getLogger("kgclip.app")
ASSETS = Path(__file__).parent / "assets"
EXAMPLES = sorted((ASSETS / "examples").glob("*.mp4"))
EXAMPLE_THUMB_PX = 112
CUSTOM = "custom (type below)"
CHECKPOINT = "the checkpoint's labels"
NO_WTI = "*This model has no word-frame interaction (WTI) head: load a fine-tuned checkpoint to see the alignment.*"
SESSION_TTL_S = 3600
MAX_UPLOAD = "500mb"  # Gradio refuses a larger upload (HTTP 413) while it streams in
RECOGNISE, RECOGNISING = "Recognise", "Recognising…"
CUSTOM_BOX = "Custom labels (comma separated; Enter runs)"
# The knowledge-graph page (a sandboxed iframe) posts the action a user clicks; this puts it in
# the hidden #kg-open box, whose change opens it. Only a string crosses, and the server checks it.
OPEN_ACTION_JS = """<script>
window.addEventListener("message", function (event) {
  if (!event.data || event.data.kgclip !== "open-action") return;
  var box = document.querySelector("#kg-open textarea, #kg-open input");
  if (!box) return;
  box.value = String(event.data.action);
  box.dispatchEvent(new Event("input", {bubbles: true}));
});
</script>"""
TYPE_LABELS = "*Type your labels in the box (comma separated) and press Enter.*"
# Reports are written here, one folder per request, and deleted after SESSION_TTL_S (Gradio
# serves its own copy of each file from its cache).
REPORTS = Path(tempfile.gettempdir()) / "kgclip-reports"
CHECKPOINTS = Path(__file__).parent / "checkpoints"
DEMO_CHECKPOINT = CHECKPOINTS / "synthetic"
FOUNDATION_WEIGHTS = CHECKPOINTS / "foundation" / "open_clip_model.safetensors"
OFFLINE_NOTE = (
    "{reason} So the app offers the models of its synthetic world instead: they recognise "
    "procedurally drawn stick-figure actions (try the example clips), not real videos "
    "(details: docs/TESTBED.md in the repository)."
)
DEMO_BANNER = (
    "**Demo model (fine-tuned KG-CLIP)**: every KG-CLIP head, trained on the 24 stick-figure "
    "actions of the `synthetic` label set; it knows those 24 actions only."
)
FOUNDATION_BANNER = (
    "**Foundation (pretrained CLIP, training-free)**: the synthetic world's own CLIP, pretrained on "
    "captioned stick-figure clips and used without fine-tuning, as a real CLIP would be: it scores "
    "each action by its knowledge-graph description and semantic units, so it also recognises "
    "the 8 new combinations of `synthetic_novel` it never saw named."
)


@dataclass
class ModelOption:
    """One model the app can run, and the banner that says plainly what it is."""

    title: str
    predictor: Predictor
    banner: str = ""


@dataclass
class Session:
    """What one browser session keeps between events: the last prediction, its label set and model."""

    pred: Prediction
    labels: LabelSet
    model: str


def load_models(args: argparse.Namespace) -> list[ModelOption]:
    """The models the app offers: the one asked for or, offline, the synthetic world's models.

    Offline, the shipped demo checkpoint (fine-tuned) and foundation (training-free) are real
    trained models for the stick-figure actions and beat random weights; random weights run
    only when both are missing or when asked for, under a banner that says so.
    """
    if args.checkpoint:
        predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device)
        return [ModelOption(predictor.model_name, predictor)]
    cfg = PredictorConfig(backbone=backbone_config(args), num_frames=args.frames)
    try:
        predictor = Predictor.from_config(cfg)
        return [ModelOption(predictor.model_name, predictor)]
    except WeightsError as err:
        reason = str(err).splitlines()[0]
        log.warning("%s", err)
    options = []
    if not args.random_weights:
        note = OFFLINE_NOTE.format(reason=reason)
        if DEMO_CHECKPOINT.is_dir():
            demo = Predictor.from_checkpoint(DEMO_CHECKPOINT, device=args.device)
            options.append(ModelOption("Demo model (fine-tuned KG-CLIP)", demo, f"{note}\n\n{DEMO_BANNER}"))
        if FOUNDATION_WEIGHTS.is_file():
            foundation = foundation_predictor(FOUNDATION_WEIGHTS, device=args.device, num_frames=args.frames)
            options.append(ModelOption("Foundation (training-free)", foundation, f"{note}\n\n{FOUNDATION_BANNER}"))
    if options:
        log.info("Offline: offering %s.", ", ".join(o.title for o in options))
        return options
    # The UI is still useful to explore offline, but never silently: the banner says so.
    log.warning("Starting the app on random weights (%s).", reason)
    cfg.backbone.pretrained, cfg.backbone.allow_random = None, True
    predictor = Predictor.from_config(cfg)
    return [ModelOption(predictor.model_name, predictor, RANDOM_WEIGHTS_WARNING)]


def _refusal(message: str) -> gr.Error:
    """An ordinary user error as a toast: no traceback in the server log, and escaped (Gradio
    renders a toast as HTML: a label like <img src=...> must stay text)."""
    return gr.Error(escape_html(message), print_exception=False)


def _user_error(err: KGClipError, video: str | None = None) -> gr.Error:
    """A library error as a toast, the upload named by its file name (the server's folders are
    nobody's business)."""
    return _refusal(str(err).replace(video, Path(video).name) if video else str(err))


@lru_cache(maxsize=8)
def _graph(labels: str | tuple[str, ...]) -> KnowledgeGraph:
    """A label set's graph; typed label sets are parsed once, not on every click."""
    return KnowledgeGraph.for_label_set(labels if isinstance(labels, str) else list(labels))


def _graph_key(label_set: str, custom: str) -> str | tuple[str, ...]:
    if label_set != CUSTOM:
        return label_set
    labels = parse_labels(custom)
    check_custom_cost(labels)  # parsing a typed set costs in proportion to its text too
    return labels.classes


def _action_choices(kg: KnowledgeGraph, actions: list[str]) -> list[tuple[str, str]]:
    """(display name, class name) pairs for a dropdown."""
    return [(kg.graph.nodes[kg.action_node(a)]["label"], a) for a in actions]


def _details(pred: Prediction) -> dict:
    """The prediction as JSON, without the server's file path (a dict with a ``path`` reads as a file)."""
    details = pred.to_dict()
    details["video"]["file"] = Path(details["video"].pop("path")).name
    return details


def _default_labels(option: ModelOption) -> str:
    return CHECKPOINT if option.predictor.default_labels else "kinetics400"


def start_warmup(options: list[ModelOption], labels: str | None = None) -> Warmup:
    """Embed each model's label set at start (``labels`` for the first) in the background."""
    jobs = [(o.predictor, o.predictor.resolve_labels(labels if i == 0 else None)) for i, o in enumerate(options)]
    return Warmup(jobs).start()


# Event handlers ------------------------------------------------------------------------------


class Handlers:
    """The app's event handlers: each calls the library and shapes its answer for the panels."""

    def __init__(self, options: list[ModelOption]) -> None:
        self.models = {o.title: o for o in options}
        # ZeroGPU pickles a GPU call's arguments: the model goes by title, never as an argument.
        self._predict_on_gpu = gpu(self._predict_clip)
        self._attribute_on_gpu = gpu(self._attribute)

    def _resolve(self, predictor: Predictor, label_set: str, custom: str) -> LabelSet:
        if label_set == CHECKPOINT:
            return predictor.resolve_labels(None)
        if label_set != CUSTOM:
            return predictor.resolve_labels(label_set)
        labels = parse_labels(custom)
        if len(labels) == 1:  # a softmax over one label is 100% whatever the clip shows
            raise LabelError(f"Only one label ({labels.classes[0]!r}): the model picks the best of the labels "
                             "given, so a single label always gets 100%. Type two or more, comma separated.")
        return labels

    def _predict_clip(self, model: str, video: str, labels: LabelSet, top_k: int, progress: gr.Progress) -> Prediction:
        def embedding(done: int, total: int) -> None:
            progress((done, total), desc="Embedding the label set (first time only)", unit="texts")

        return self.models[model].predictor.predict(video, labels=labels, top_k=top_k, progress=embedding)

    def _attribute(self, session: Session, steps: int, progress: gr.Progress) -> explain.Attribution:
        # Pass gr.Progress itself into the GPU call, not a closure over it (pickled on ZeroGPU).
        return explain.integrated_gradients(self.models[session.model].predictor, session.pred, session.labels,
                                            steps=steps,
                                            progress=lambda fraction, message: progress(fraction, desc=message))

    def choose_model(self, model: str):
        """The chosen model's banner, and its own label set selected."""
        option = self.models[model]
        return option.banner, gr.update(value=_default_labels(option))

    def predict(self, video: str | None, label_set: str, custom: str, top_k: int, opacity: float, model: str,
                progress: gr.Progress = gr.Progress()):
        """Recognise the clip; every result panel's content, and the new session."""
        if not video:
            raise _refusal("Upload a video clip or pick an example first.")
        if model not in self.models:
            raise _refusal(f"Unknown model; choose one of: {', '.join(self.models)}.")
        try:
            labels = self._resolve(self.models[model].predictor, label_set, custom)
            # The Predictor reads the clip before it embeds the label set, so a bad file is refused at once.
            progress(0.0, desc="Decoding the clip, then embedding the label set (first time only)")
            pred = self._predict_on_gpu(model, video, labels, int(top_k), progress)
        except KGClipError as err:
            raise _user_error(err, video) from err
        progress(0.8, desc="Rendering the explanations")
        # Every kind is offered: a model without MRA shows plain frames captioned that it has no regions.
        kinds = list(explain.HEATMAP_KINDS)
        kind = next((k for k in kinds if explain.heatmap_choices(pred, k)), None)
        names = explain.heatmap_choices(pred, kind) if kind else []
        alignment = explain.alignment_heatmap(pred)
        return (
            explain.topk_bar_chart(pred),
            gr.update(choices=kinds, value=kind),
            gr.update(choices=names, value=names[0] if names else None),
            _heatmap_gallery(pred, kind, names[0] if names else None, opacity),
            explain.evidence_table(pred),
            explain.evidence_note(pred),
            explain.units_table(pred),
            explain.unit_timeline(pred),
            alignment,
            gr.update(value="" if alignment else NO_WTI),
            explain.prediction_graph_html(pred),
            gr.update(choices=[(label, name) for label, name in zip(pred.labels, pred.class_names)],
                      value=pred.class_names[0]),
            f"**Result for** {escape_markdown(Path(video).name)}: {escape_markdown(model)}, "
            f"label set {escape_markdown(labels.name)}",
            _details(pred),
            Session(pred, labels, model),
        )

    def show_clip(self, video: str | None):
        """A new clip: its player (a playable copy when browsers cannot play the file), a note,
        every result of the previous clip cleared, and the Recognise button ready."""
        shown = playable_copy(video) if video else None
        return (shown.path if shown else None, shown.note if shown else "", *_cleared_results(), [], "", None,
                gr.Button(RECOGNISE, interactive=True))

    def report(self, session: Session | None, kind: str | None, which: str | None, opacity: float) -> list[str]:
        """The session's prediction as an HTML report and an MP4 of the clip with the heatmap shown."""
        if session is None:
            raise _refusal("Recognise a clip first; the report is of its prediction.")
        _prune(REPORTS, SESSION_TTL_S)
        REPORTS.mkdir(exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=REPORTS))
        video = session.pred.video.path
        try:
            files = write_report(session.pred, folder / f"{Path(video).stem}-kgclip-report.html", kind, which,
                                 float(opacity))
        except KGClipError as err:
            raise _user_error(err, video) from err
        return [str(f) for f in files]

    def heatmaps(self, session: Session | None, kind: str | None, which: str | None, opacity: float):
        """The frames with the chosen map of the session's prediction."""
        return _heatmap_gallery(session.pred if session else None, kind, which, opacity)

    def heatmap_kind(self, session: Session | None, kind: str | None, opacity: float):
        """The maps of the chosen kind, and the frames with the first of them."""
        names = explain.heatmap_choices(session.pred, kind) if session and kind in explain.HEATMAP_KINDS else []
        which = names[0] if names else None
        return gr.update(choices=names, value=which), self.heatmaps(session, kind, which, opacity)

    def deep_explanation(self, session: Session | None, steps: int, opacity: float,
                         progress: gr.Progress = gr.Progress()):
        """Integrated Gradients of the session's top class, on its frames, and a note."""
        if session is None:
            raise _refusal("Recognise a clip first; the deep explanation explains its top prediction.")
        try:
            attr = self._attribute_on_gpu(session, int(steps), progress)
        except KGClipError as err:
            raise _user_error(err) from err
        caption = f"Integrated Gradients for \"{attr.label}\": bright = the pixels that raised its score most"
        return (explain.heatmap_gallery(session.pred, attr.maps, float(opacity), caption=caption),
                explain.attribution_note(attr))

    def kg_search(self, label_set: str, custom: str | None, query: str | None, progress: gr.Progress = gr.Progress()):
        """The actions of the label set matching the query (all of them for an empty query)."""
        custom, query = custom or "", query or ""  # a load event sends None for empty boxes
        if label_set == CUSTOM and not custom.strip():  # nothing typed yet: nothing is wrong
            return gr.update(choices=[], value=None)
        try:
            progress(0.0, desc="Building the knowledge graph")
            kg = _graph(_graph_key(label_set, custom))
        except KGClipError as err:
            raise _user_error(err) from err
        found = kg.search(query, limit=200) if query.strip() else kg.actions
        return gr.update(choices=_action_choices(kg, found), value=found[0] if found else None)

    def kg_action(self, label_set: str, custom: str | None, action: str | None):
        """One action's description (Markdown), graph (HTML) and related actions (choices)."""
        if not action:
            typing = label_set == CUSTOM and not (custom or "").strip()
            nothing = gr.update(choices=[], value=None)
            return (TYPE_LABELS if typing else "*Pick an action.*"), "", nothing, gr.update(choices=[], visible=False)
        try:
            kg = _graph(_graph_key(label_set, custom or ""))
            view = action_view(kg, action)
        except KGClipError as err:
            raise _user_error(err) from err
        looks_like = [(f"{like.display_name} ({like.label_set})", f"{like.label_set}:{like.action}")
                      for like in view.looks_like]
        return (explain.action_markdown(view), view.html, gr.update(choices=_action_choices(kg, view.related), value=None),
                gr.update(choices=looks_like, value=None, visible=bool(looks_like)))

    def open_curated(self, choice: str | None):
        """The Knowledge-graph tab on a curated action (``label_set:action``) a typed label looks like."""
        label_set, _, action = (choice or "").partition(":")
        if label_set not in builtin_label_sets() or not _graph(label_set).has_action(action):
            raise _refusal("Pick one of the curated actions listed.")
        kg = _graph(label_set)
        return label_set, "", "", gr.update(choices=_action_choices(kg, kg.actions), value=action)

    def open_action(self, label_set: str, custom: str | None, related: str | None, clicked: str | None):
        """Open an action of the label set (a related one from the list, or one clicked in the
        graph); the search is cleared so the action is among the choices."""
        action = clicked or related
        kg = _graph(_graph_key(label_set, custom or ""))
        if not action or not kg.has_action(action):  # the emptied box, or a stale click: nothing to open
            return gr.skip(), gr.skip(), ""
        return "", gr.update(choices=_action_choices(kg, kg.actions), value=kg.graph.nodes[kg.action_node(action)]["name"]), ""

    def open_in_kg(self, session: Session | None, action: str | None):
        """The Knowledge-graph tab on a predicted action, with the prediction's label set."""
        if session is None or not action:
            raise _refusal("Recognise a clip first, then pick one of its predicted actions.")
        labels = session.labels
        label_set, custom = (labels.name, "") if labels.builtin else (CUSTOM, "\n".join(labels.classes))
        kg = _graph(_graph_key(label_set, custom))
        return gr.Tabs(selected="kg"), label_set, custom, "", gr.update(choices=_action_choices(kg, kg.actions), value=action)


def _prune(folder: Path, max_age_s: float) -> None:
    """Delete the entries of ``folder`` older than ``max_age_s``."""
    cutoff = time.time() - max_age_s
    for entry in folder.glob("*") if folder.is_dir() else []:
        if entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def _follow_typing(custom: str | None, label_set: str) -> str:
    """The label-set menu once labels are typed: custom (a box emptied leaves the menu alone)."""
    return CUSTOM if (custom or "").strip() else label_set


def _cleared_results() -> tuple:
    """Every result panel empty, in ``ResultPanels.outputs`` order, and no session."""
    empty_choice = gr.update(choices=[], value=None)
    return (None, empty_choice, empty_choice, [], None, "", None, None, None, "", "", empty_choice, "", None, None)


def _heatmap_gallery(pred: Prediction | None, kind: str | None, which: str | None, opacity: float):
    """The frames of ``pred`` with map ``which`` of ``kind`` (its first entry is the mean of all)."""
    if pred is None:
        return []
    names = explain.heatmap_choices(pred, kind) if kind in explain.HEATMAP_KINDS else []
    index = names.index(which) - 1 if which in names[1:] else None
    maps = explain.heatmaps(pred, kind, index) if names else None
    caption = explain.heatmap_caption(pred, kind, index) if kind in explain.HEATMAP_KINDS else None
    return explain.heatmap_gallery(pred, maps, float(opacity), caption=caption)


# Panels: each lays out one part of the page and returns its components -------------------------


@dataclass
class Header:
    """The model choice, its banner and the warm-up status line."""

    model: gr.Radio
    banner: gr.Markdown | None  # None on random weights: that warning never changes
    warm_status: gr.Markdown | None
    warm_timer: gr.Timer | None


@dataclass
class ClipPanel:
    """The clip, the label set and the Recognise button; then the predicted-action picker."""

    video: gr.File
    player: gr.Video
    player_note: gr.Markdown
    label_set: gr.Dropdown
    custom: gr.Textbox
    top_k: gr.Slider
    run: gr.Button
    open_action: gr.Dropdown
    open_button: gr.Button


@dataclass
class ResultPanels:
    """Every panel a prediction fills, in the order ``Handlers.predict`` returns them."""

    chart: gr.Plot
    kind: gr.Radio
    which: gr.Dropdown
    opacity: gr.Slider
    gallery: gr.Gallery
    evidence: gr.Dataframe
    evidence_note: gr.Markdown
    units: gr.Dataframe
    timeline: gr.Plot
    alignment: gr.Plot
    alignment_note: gr.Markdown
    kg_view: gr.HTML
    result_for: gr.Markdown
    details: gr.JSON

    def outputs(self, open_action: gr.Dropdown) -> list:
        """The components ``Handlers.predict`` fills, in its order (the session state comes last)."""
        return [self.chart, self.kind, self.which, self.gallery, self.evidence, self.evidence_note, self.units,
                self.timeline, self.alignment, self.alignment_note, self.kg_view, open_action, self.result_for,
                self.details]


@dataclass
class DeepPanel:
    """The opt-in Integrated Gradients explanation."""

    steps: gr.Slider
    run: gr.Button
    note: gr.Markdown
    gallery: gr.Gallery


@dataclass
class ReportPanel:
    """The take-away: an HTML report and a heatmap video of the prediction."""

    run: gr.Button
    files: gr.File


@dataclass
class KGPanel:
    """The Knowledge-graph tab: a label set, a search, one action's description and graph."""

    tab: gr.Tab
    label_set: gr.Dropdown
    custom: gr.Textbox
    query: gr.Textbox
    pick: gr.Dropdown
    text: gr.Markdown
    page: gr.HTML
    related: gr.Radio
    opened: gr.Textbox
    looks_like: gr.Radio


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


def clip_panel(choices: list[str], default_set: str) -> ClipPanel:
    """The clip upload and its player, label set, custom labels, top-k, Recognise, examples and
    predicted-action picker.

    The upload is a file box: Gradio's video widget takes video/* only, so no GIF, and plays
    only what the browser plays; the player beside it shows a playable copy when needed.
    """
    video = gr.File(label="Clip: a video or an animated GIF", file_types=list(EXTENSIONS), elem_id="clip",
                    height=120)
    player = gr.Video(label="Your clip", interactive=False, elem_id="player", height=260)
    player_note = gr.Markdown(elem_id="player-note")
    label_set = gr.Dropdown(choices, value=default_set, label="Label set", elem_id="label-set")
    custom = gr.Textbox(label=CUSTOM_BOX, lines=1, placeholder="playing guitar, riding a horse, brushing teeth",
                        elem_id="custom-labels")
    top_k = gr.Slider(1, 10, value=5, step=1, label="Top-k")
    run = gr.Button(RECOGNISE, variant="primary", elem_id="recognise")
    examples_panel(video)
    with gr.Row():
        open_action = gr.Dropdown([], label="Predicted action", scale=3, elem_id="predicted-action")
        open_button = gr.Button("Show its concepts", scale=1, elem_id="open-in-kg")
    return ClipPanel(video, player, player_note, label_set, custom, top_k, run, open_action, open_button)


@lru_cache(maxsize=1)
def _example_thumbnails() -> tuple[tuple[np.ndarray, str], ...]:
    """(middle frame, action name) of each example clip, for a captioned thumbnail."""
    return tuple((read_clip(path, num_frames=1, short_side=EXAMPLE_THUMB_PX).frames[0, 0],
                  path.stem.replace("_", " ")) for path in EXAMPLES)


def _pick_example(event: gr.SelectData) -> str:
    return str(EXAMPLES[event.index])


def examples_panel(video: gr.File) -> None:
    """The example clips as captioned thumbnails; a click loads one into the clip box."""
    if not EXAMPLES:
        return
    thumbnails = gr.Gallery(list(_example_thumbnails()), label="Example clips (stick-figure actions): click one",
                            columns=2, height="auto", allow_preview=False, show_label=True, elem_id="examples")
    thumbnails.select(_pick_example, None, [video], api_visibility="private")


def frames_panel() -> tuple[gr.Markdown, gr.Plot, gr.Radio, gr.Dropdown, gr.Slider, gr.Gallery]:
    """Which clip the results are for, the top-k chart and the sampled frames with the chosen heatmap."""
    result_for = gr.Markdown(elem_id="result-for")
    chart = gr.Plot(label="Predicted actions", elem_id="topk-chart")
    with gr.Row():
        kind = gr.Radio([], label="Heatmap", info="evidence: the top action's own concepts; regions: MRA; "
                                                  "units: the semantic units the model selected")
        which = gr.Dropdown([], label="Map")
        opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Opacity", elem_id="opacity")
    # "contain": each picture is the raw frame, the overlay and a colour bar side by side; a cropped
    # thumbnail would cut off the bar and half the frame.
    gallery = gr.Gallery(label="Sampled frames with heatmaps", columns=4, height="auto", object_fit="contain",
                         elem_id="heatmaps")
    return result_for, chart, kind, which, opacity, gallery


def report_panel() -> ReportPanel:
    """A button that makes the report and the heatmap video, and the files to download."""
    with gr.Row():
        run = gr.Button("Make a report to download (HTML + MP4)", scale=1, elem_id="make-report")
        files = gr.File(label="Report: open the HTML in any browser; the MP4 is the clip with the heatmap",
                        file_count="multiple", interactive=False, scale=2, height=110, elem_id="report-files")
    return ReportPanel(run, files)


def evidence_panel() -> tuple[gr.Dataframe, gr.Markdown]:
    """Why this action: the top action's own concepts checked against the clip."""
    with gr.Column():
        table = gr.Dataframe(headers=explain.figures.EVIDENCE_COLUMNS,
                             label="Why this action: the top action's own knowledge-graph concepts",
                             interactive=False, elem_id="evidence-table")
        note = gr.Markdown(elem_id="evidence-note")
    return table, note


def units_panel() -> tuple[gr.Dataframe, gr.Plot]:
    """The semantic units the model selected, as a table and over time."""
    # One below the other, full width: the table has seven columns and the timeline's title is long.
    table = gr.Dataframe(headers=explain.figures.UNIT_COLUMNS,
                         label="What else the model saw: the semantic units it selected",
                         interactive=False, elem_id="units-table")
    gr.Markdown(explain.figures.UNITS_NOTE, elem_id="units-note")
    timeline = gr.Plot(label="Semantic units over time", elem_id="unit-timeline")
    return table, timeline


def alignment_and_concepts_panel() -> tuple[gr.Plot, gr.Markdown, gr.HTML]:
    """The word-frame alignment beside the top action's knowledge-graph view."""
    with gr.Row():
        with gr.Column():
            alignment = gr.Plot(label="Word-frame alignment (WTI)", elem_id="alignment")
            note = gr.Markdown()
        with gr.Column():
            gr.Markdown("**Concepts of the top action** (✓ = a concept the clip shows, with its score: "
                        "the ✓ rows of *Why this action*)")
            kg_view = gr.HTML(elem_id="prediction-kg")
    return alignment, note, kg_view


def deep_panel() -> DeepPanel:
    """Integrated Gradients on request (several model passes)."""
    with gr.Accordion("Deep explanation (Integrated Gradients, several model passes)", open=False):
        with gr.Row():
            steps = gr.Slider(4, 64, value=16, step=4, label="Interpolation steps")
            run = gr.Button("Deep explanation", elem_id="deep-explanation")
        note = gr.Markdown()
        gallery = gr.Gallery(label="Attribution to the top class", columns=4, height="auto")
    return DeepPanel(steps, run, note, gallery)


def details_panel() -> gr.JSON:
    """The prediction as JSON."""
    with gr.Accordion("Details (JSON)", open=False):
        return gr.JSON(label="Details")


def kg_panel(labels: str | None) -> KGPanel:
    """The Knowledge-graph tab: browse a label set's actions and concepts without a video."""
    with gr.Tab("Knowledge graph", id="kg") as tab:
        gr.Markdown("Browse the concepts of any label set's actions, without a video.")
        with gr.Row():
            with gr.Column(scale=1):
                label_set = gr.Dropdown([*builtin_label_sets(), CUSTOM], value=labels or "kinetics400", label="Label set")
                custom = gr.Textbox(label=CUSTOM_BOX, lines=1, placeholder="tennis serve, forehand, juggling",
                                    elem_id="kg-custom")
                query = gr.Textbox(label="Search actions", placeholder="e.g. guitar")
                start = _graph(label_set.value)
                pick = gr.Dropdown(_action_choices(start, start.actions), value=start.actions[0],
                                   label="Action", elem_id="kg-action")
            with gr.Column(scale=2):
                text = gr.Markdown(elem_id="kg-description")
                looks_like = gr.Radio([], label="Looks like these curated actions: click one to open its knowledge",
                                      visible=False, elem_id="kg-looks-like")
        page = gr.HTML(elem_id="kg-graph")  # full width: the layered graph reads left to right
        related = gr.Radio([], label="Related actions (sharing most concepts): click one to open it",
                           elem_id="kg-related")
        # The graph page posts a clicked action here (see OPEN_ACTION_JS); hidden, not absent.
        opened = gr.Textbox(visible="hidden", elem_id="kg-open")
    return KGPanel(tab, label_set, custom, query, pick, text, page, related, opened, looks_like)


# Wiring: each function connects one panel's events to its handlers -------------------------------


def wire_header(demo: gr.Blocks, header: Header, handlers: Handlers, label_set: gr.Dropdown,
                warmup: Warmup | None) -> None:
    """Switching model shows its banner and label set; the warm-up line follows its progress."""
    if header.banner is not None:
        header.model.change(handlers.choose_model, [header.model], [header.banner, label_set], api_name="choose_model")
    if warmup is not None:
        def warm_view():
            return warmup.status(), gr.Timer(active=not warmup.done)

        gr.on([demo.load, header.warm_timer.tick], warm_view, None, [header.warm_status, header.warm_timer],
              api_visibility="private")


def wire_recognise(handlers: Handlers, model: gr.Radio, clip: ClipPanel, results: ResultPanels,
                   deep: DeepPanel, report: ReportPanel, session: gr.State) -> None:
    """Recognise fills every result panel, one run at a time, for the clip shown; the heatmap
    controls and the deep explanation redraw the frames."""
    # The button says a run is on and takes no click until it ends; a new clip cancels the
    # run, clears its results and frees the button, so a result always belongs to the clip shown.
    busy = dict(fn=lambda: (gr.Button(RECOGNISING, interactive=False), None), inputs=None,
                outputs=[clip.run, report.files], queue=False, api_visibility="private")
    # Progress, and an error, show on the chart only, not as a red pill on every panel.
    predict = dict(fn=handlers.predict, inputs=[clip.video, clip.label_set, clip.custom, clip.top_k, results.opacity, model],
                   outputs=[*results.outputs(clip.open_action), session], show_progress_on=[results.chart])
    # Typed labels are what the user wants recognised: the menu follows the typing (or a paste).
    follow = dict(fn=_follow_typing, inputs=[clip.custom, clip.label_set], outputs=[clip.label_set], queue=False,
                  api_visibility="private")
    clip.custom.change(**follow)
    clicked = clip.run.click(**busy).then(**predict, api_name="predict")
    # Enter in the box: the menu is set from the typing first, within this event, since the
    # change event's own update may not have reached the page yet (a fast Enter raced it).
    typed = clip.custom.submit(**follow).then(**busy).then(**predict, api_visibility="private")
    # Gradio 6.31 skips a .then() after an error, so the button comes back on success and on failure.
    ready = dict(fn=lambda: gr.Button(RECOGNISE, interactive=True), inputs=None, outputs=[clip.run], queue=False,
                 api_visibility="private")
    for run in (clicked, typed):
        run.success(**ready)
        run.failure(**ready)
    clip.video.change(handlers.show_clip, [clip.video],
                      [clip.player, clip.player_note, *results.outputs(clip.open_action), session, deep.gallery,
                       deep.note, report.files, clip.run],
                      cancels=[clicked, typed], api_name="show_clip")
    results.kind.input(handlers.heatmap_kind, [session, results.kind, results.opacity],
                       [results.which, results.gallery], api_name="heatmap_kind")
    # The opacity's slider and its number box both change it; always_last redraws once for a drag.
    gr.on([results.which.input, results.opacity.change], handlers.heatmaps,
          [session, results.kind, results.which, results.opacity], [results.gallery], api_name="heatmaps",
          trigger_mode="always_last")
    report.run.click(handlers.report, [session, results.kind, results.which, results.opacity], [report.files],
                     api_name="report")
    deep.run.click(handlers.deep_explanation, [session, deep.steps, results.opacity], [deep.gallery, deep.note],
                   api_name="deep_explanation")


def wire_kg(handlers: Handlers, kg: KGPanel, tabs: gr.Tabs, clip: ClipPanel, session: gr.State) -> None:
    """Searching, picking and opening a predicted action show an action's concepts."""
    # The graph is drawn only while its tab is visible: vis-network lays out and focuses
    # in a zero-size canvas inside a hidden tab. So the graph follows tab visits and user
    # picks, and the chained re-draws below are the same kg_action, kept off the API.
    show = dict(fn=handlers.kg_action, inputs=[kg.label_set, kg.custom, kg.pick],
                outputs=[kg.text, kg.page, kg.related, kg.looks_like])
    kg.pick.input(**show, api_name="kg_action")
    # A related action, clicked in the list or in the graph, opens like a pick.
    gr.on([kg.related.input, kg.opened.change], handlers.open_action, [kg.label_set, kg.custom, kg.related, kg.opened],
          [kg.query, kg.pick, kg.opened], api_name="open_action").then(**show, api_visibility="private")
    kg.looks_like.input(handlers.open_curated, [kg.looks_like], [kg.label_set, kg.custom, kg.query, kg.pick],
                        api_name="open_curated").then(**show, api_visibility="private")
    follow = dict(fn=_follow_typing, inputs=[kg.custom, kg.label_set], outputs=[kg.label_set], queue=False,
                  api_visibility="private")
    kg.custom.change(**follow)
    kg.tab.select(**show, api_visibility="private")
    clip.open_button.click(handlers.open_in_kg, [session, clip.open_action],
                           [tabs, kg.label_set, kg.custom, kg.query, kg.pick],
                           api_name="open_in_kg").then(**show, api_visibility="private")
    search = dict(fn=handlers.kg_search, inputs=[kg.label_set, kg.custom, kg.query], outputs=[kg.pick])
    gr.on([kg.label_set.input, kg.query.submit], **search, api_name="kg_search").then(**show, api_visibility="private")
    # Enter in the typed-labels box: the menu follows the typing first, as in the Recognise tab.
    kg.custom.submit(**follow).then(**search, api_visibility="private").then(**show, api_visibility="private")


def build_app(options: list[ModelOption], labels: str | None = None, warmup: Warmup | None = None) -> gr.Blocks:
    """Lay out the UI around the models in ``options`` (a choice appears when there are
    several); ``labels`` is the label set selected at start; ``warmup``'s status is shown
    until it is done."""
    if labels is not None and labels not in builtin_label_sets():
        raise SystemExit(f"--labels must be one of {', '.join(builtin_label_sets())}; got {labels!r}.")
    with_defaults = any(o.predictor.default_labels for o in options)
    choices = [*builtin_label_sets(), CUSTOM] + ([CHECKPOINT] if with_defaults else [])
    handlers = Handlers(options)
    with gr.Blocks(title="KG-CLIP: explainable fine-grained action recognition", delete_cache=(600, 3600),
                   head=OPEN_ACTION_JS) as demo:
        header = header_panel(options, warmup)
        session = gr.State(None, time_to_live=SESSION_TTL_S)
        with gr.Tabs() as tabs:
            with gr.Tab("Recognise", id="recognise"):
                with gr.Row():
                    with gr.Column(scale=1):
                        clip = clip_panel(choices, labels or _default_labels(options[0]))
                    with gr.Column(scale=2):
                        result_for, chart, kind, which, opacity, gallery = frames_panel()
                        report = report_panel()
                evidence, evidence_note = evidence_panel()
                units, timeline = units_panel()
                alignment, alignment_note, kg_view = alignment_and_concepts_panel()
                deep = deep_panel()
                details = details_panel()
            kg = kg_panel(labels)
        results = ResultPanels(chart, kind, which, opacity, gallery, evidence, evidence_note, units, timeline,
                               alignment, alignment_note, kg_view, result_for, details)
        wire_header(demo, header, handlers, clip.label_set, warmup)
        wire_recognise(handlers, header.model, clip, results, deep, report, session)
        wire_kg(handlers, kg, tabs, clip, session)
    return demo


def _unknown_endpoint(request: Request, err: Exception) -> JSONResponse:
    """An API call naming no event of this app (an unknown api_name or fn_index): Gradio
    raises FnIndexInferError or KeyError for it, which would answer 500; it is a 404."""
    log.info("Unknown endpoint %s (%s)", request.url.path, err)
    return JSONResponse({"error": "No such endpoint; /gradio_api/info lists them."}, status_code=404)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; host and port also follow Gradio's environment variables."""
    p = argparse.ArgumentParser(description="KG-CLIP web app")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="a trained checkpoint directory (config.json, model.safetensors, kg.json)")
    p.add_argument("--labels", default=None, help="label set selected at start (default: kinetics400, or the checkpoint's)")
    p.add_argument("--concurrency", type=int, default=2,
                   help="runs of each event at once: with 2, a request at its budget leaves one worker free")
    p.add_argument("--request-budget", type=float, default=REQUEST_BUDGET_S, metavar="SECONDS",
                   help="a prediction past this is ended with a message (docs/LIMITS.md)")
    p.add_argument("--max-queue", type=int, default=20, help="requests waiting before new ones are refused")
    add_backbone_args(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Start the app."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        configure_cache(args)
        options = load_models(args)
    except KGClipError as err:  # a bad checkpoint or option: one line, not a traceback
        raise SystemExit(f"error: {err}") from None
    for option in options:
        option.predictor.limits = RequestLimits(budget_s=args.request_budget)
    demo = build_app(options, args.labels, start_warmup(options, args.labels))
    demo.queue(max_size=args.max_queue, default_concurrency_limit=args.concurrency)
    unknown = {FnIndexInferError: _unknown_endpoint, KeyError: _unknown_endpoint}
    demo.launch(server_name=args.host, server_port=args.port, max_file_size=MAX_UPLOAD, show_error=True,
                app_kwargs={"exception_handlers": unknown}, allowed_paths=[str(ASSETS / "examples")])


if __name__ == "__main__":
    main()
