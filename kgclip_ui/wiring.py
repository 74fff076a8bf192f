"""The page: ``build_app`` lays out every area (``kgclip_ui.layout``) and connects each
component's events to its handlers (``kgclip_ui.handlers``), one function per area."""

from __future__ import annotations

import gradio as gr

from kgclip_core.labels import builtin_label_sets
from kgclip_core.warmup import Warmup
from kgclip_ui.common import CHECKPOINT, CUSTOM, SESSION_TTL_S, follow_typing
from kgclip_ui.handlers import clip as clip_events
from kgclip_ui.handlers import explanations as explanation_events
from kgclip_ui.handlers import kg as kg_events
from kgclip_ui.handlers import model_choice as model_events
from kgclip_ui.handlers import report as report_events
from kgclip_ui.handlers import timeline as timeline_events
from kgclip_ui.layout.clip import EXAMPLES_CSS, ClipPanel, ResultPanels, clip_panel, details_panel, result_panel
from kgclip_ui.layout.explanations import (GALLERY_CSS, ContrastPanel, DeepPanel, ExplanationPanels, HeatmapPanel,
                                           alignment_and_concepts_panel, contrast_panel, deep_panel, evidence_panel,
                                           heatmap_panel, units_panel)
from kgclip_ui.layout.kg import OPEN_ACTION_JS, KGPanel, kg_panel
from kgclip_ui.layout.model_choice import Header, header_panel
from kgclip_ui.layout.report import REPORT_CSS, ReportPanel, report_panel
from kgclip_ui.layout.timeline import TIMELINE_JS, TimelinePanel, timeline_panel
from kgclip_ui.models import ModelOption, default_labels
from kgclip_ui.storage import AppFolder


# What the page's <head> and stylesheet carry (Gradio 6 takes them at launch, not in Blocks).
PAGE_HEAD = OPEN_ACTION_JS + TIMELINE_JS
PAGE_CSS = "\n".join([EXAMPLES_CSS, GALLERY_CSS, REPORT_CSS])
# Both report events share one run at a time: each prunes the reports folder to leave room for its
# own files before writing them (kgclip_ui.storage.REPORTS_ROOM), so the folder stays under its cap.
ONE_REPORT_AT_A_TIME = {"concurrency_limit": 1, "concurrency_id": "reports"}


def wire_examples(clip: ClipPanel) -> None:
    """A click on an example's thumbnail loads it into the clip box."""
    if clip.examples is not None:
        clip.examples.select(clip_events.pick_example, None, [clip.video], api_visibility="private")


def wire_webcam(clip: ClipPanel) -> None:
    """A webcam recording goes into the clip box, and on from there as an upload."""
    # The recording as uploaded: Gradio's preprocessing would re-encode it (the ffmpeg program)
    # only to drop a sound track it does not have.
    clip.webcam.change(clip_events.use_recording, [clip.webcam], [clip.video], preprocess=False,
                       api_visibility="private")


def wire_header(demo: gr.Blocks, header: Header, handlers: model_events.ModelChoice,
                label_set: gr.Dropdown) -> None:
    """Switching model shows its banner and label set; the warm-up line follows its progress."""
    if header.banner is not None:
        header.model.change(handlers.choose_model, [header.model], [header.banner, label_set], api_name="choose_model")
    if header.warm_timer is not None:
        gr.on([demo.load, header.warm_timer.tick], handlers.warm_view, None, [header.warm_status, header.warm_timer],
              api_visibility="private")


def wire_recognise(handlers: clip_events.Recogniser, model: gr.Radio, clip: ClipPanel, results: ResultPanels,
                   deep: DeepPanel, report: ReportPanel, session: gr.State) -> None:
    """Recognise fills every result panel, one run at a time, for the clip shown."""
    # The button says a run is on and takes no click until it ends; a new clip cancels the
    # run, clears its results and frees the button, so a result always belongs to the clip shown.
    busy = dict(fn=clip_events.busy, inputs=None, outputs=[clip.run, report.files], queue=False,
                api_visibility="private")
    # Progress, and an error, show on the chart only, not as a red pill on every panel.
    predict = dict(fn=handlers.predict, inputs=[clip.video, clip.label_set, clip.custom, clip.top_k,
                                                results.explanations.heatmaps.opacity, model],
                   outputs=[*results.outputs(clip.open_action), session], show_progress_on=[results.chart])
    # Typed labels are what the user wants recognised: the menu follows the typing (or a paste).
    follow = dict(fn=follow_typing, inputs=[clip.custom, clip.label_set], outputs=[clip.label_set], queue=False,
                  api_visibility="private")
    clip.custom.change(**follow)
    clicked = clip.run.click(**busy).then(**predict, api_name="predict")
    # Enter in the box: the menu is set from the typing first, within this event, since the
    # change event's own update may not have reached the page yet (a fast Enter raced it).
    typed = clip.custom.submit(**follow).then(**busy).then(**predict, api_visibility="private")
    # Gradio 6.31 skips a .then() after an error, so the button comes back on success and on failure.
    ready = dict(fn=clip_events.ready, inputs=None, outputs=[clip.run], queue=False, api_visibility="private")
    for run in (clicked, typed):
        run.success(**ready)
        run.failure(**ready)
    clip.video.change(clip_events.show_clip, [clip.video],
                      [clip.player, clip.player_note, *results.outputs(clip.open_action), session, deep.gallery,
                       deep.note, report.files, clip.run],
                      cancels=[clicked, typed], api_name="show_clip")


def wire_heatmaps(heatmaps: HeatmapPanel, session: gr.State) -> None:
    """The heatmap's kind, map and opacity redraw the frames."""
    heatmaps.kind.input(explanation_events.heatmap_kind, [session, heatmaps.kind, heatmaps.opacity],
                        [heatmaps.which, heatmaps.gallery], api_name="heatmap_kind")
    # The opacity's slider and its number box both change it; always_last redraws once for a drag.
    gr.on([heatmaps.which.input, heatmaps.opacity.change], explanation_events.heatmaps,
          [session, heatmaps.kind, heatmaps.which, heatmaps.opacity], [heatmaps.gallery], api_name="heatmaps",
          trigger_mode="always_last")


def wire_report(handlers: report_events.Reports, report: ReportPanel, heatmaps: HeatmapPanel,
                session: gr.State) -> None:
    """The report shows the heatmap chosen on the page."""
    report.run.click(handlers.make_report, [session, heatmaps.kind, heatmaps.which, heatmaps.opacity],
                     [report.files], api_name="report", **ONE_REPORT_AT_A_TIME)


def wire_deep(handlers: explanation_events.DeepExplanation, deep: DeepPanel, opacity: gr.Slider,
              session: gr.State) -> gr.events.Dependency:
    """The deep explanation draws on the frames at the page's opacity; its event, for a new clip
    to cancel."""
    return deep.run.click(handlers.deep_explanation, [session, deep.steps, opacity], [deep.gallery, deep.note],
                          api_name="deep_explanation")


def wire_contrast(handlers: explanation_events.ContrastChoice, contrast: ContrastPanel, heatmaps: HeatmapPanel,
                  session: gr.State) -> None:
    """Picking a rival explains the top action against it (a person's pick only: the prediction
    sets the runner-up without asking again)."""
    contrast.rival.input(handlers.contrast, [session, contrast.rival, heatmaps.opacity],
                         [contrast.note, contrast.table, heatmaps.kind], api_name="contrast")


def wire_kg(kg: KGPanel, tabs: gr.Tabs, clip: ClipPanel, session: gr.State) -> None:
    """Searching, picking and opening a predicted action show an action's concepts."""
    # The graph is drawn only while its tab is visible: vis-network lays out and focuses
    # in a zero-size canvas inside a hidden tab. So the graph follows tab visits and user
    # picks, and the chained re-draws below are the same kg_action, kept off the API.
    show = dict(fn=kg_events.kg_action, inputs=[kg.label_set, kg.custom, kg.pick],
                outputs=[kg.text, kg.page, kg.related, kg.looks_like])
    kg.pick.input(**show, api_name="kg_action")
    # A related action, clicked in the list or in the graph, opens like a pick.
    gr.on([kg.related.input, kg.opened.change], kg_events.open_action, [kg.label_set, kg.custom, kg.related, kg.opened],
          [kg.query, kg.pick, kg.opened], api_name="open_action").then(**show, api_visibility="private")
    kg.looks_like.input(kg_events.open_curated, [kg.looks_like], [kg.label_set, kg.custom, kg.query, kg.pick],
                        api_name="open_curated").then(**show, api_visibility="private")
    follow = dict(fn=follow_typing, inputs=[kg.custom, kg.label_set], outputs=[kg.label_set], queue=False,
                  api_visibility="private")
    kg.custom.change(**follow)
    kg.tab.select(**show, api_visibility="private")
    clip.open_button.click(kg_events.open_in_kg, [session, clip.open_action],
                           [tabs, kg.label_set, kg.custom, kg.query, kg.pick],
                           api_name="open_in_kg").then(**show, api_visibility="private")
    search = dict(fn=kg_events.kg_search, inputs=[kg.label_set, kg.custom, kg.query], outputs=[kg.pick])
    gr.on([kg.label_set.input, kg.query.submit], **search, api_name="kg_search").then(**show, api_visibility="private")
    # Enter in the typed-labels box: the menu follows the typing first, as in the Recognise tab.
    kg.custom.submit(**follow).then(**search, api_visibility="private").then(**show, api_visibility="private")


def wire_timeline(handlers: timeline_events.TimelineEvents, reports: report_events.Reports, model: gr.Radio,
                  clip: ClipPanel, panel: TimelinePanel, results: ResultPanels, session: gr.State) -> None:
    """A clip's timeline; a click on one of its segments explains it in every result panel (the
    page's script moved the player there); its report; a new clip clears the timeline, or cancels
    its making."""
    made = panel.run.click(handlers.make, [clip.video, clip.label_set, clip.custom, clip.top_k, model],
                           [panel.chart, panel.segments, panel.state], api_name="timeline",
                           show_progress_on=[panel.chart])
    panel.pick.change(handlers.explain_segment, [panel.state, panel.pick, results.explanations.heatmaps.opacity],
                      [*results.outputs(clip.open_action), session], api_name="timeline_segment",
                      show_progress_on=[results.chart])
    clip.video.change(timeline_events.cleared_timeline, None,
                      [panel.chart, panel.segments, panel.state, panel.report_file], cancels=[made],
                      api_visibility="private")
    panel.report.click(reports.make_timeline_report, [panel.state], [panel.report_file], api_name="timeline_report",
                       **ONE_REPORT_AT_A_TIME)


def build_app(options: list[ModelOption], folder: AppFolder, labels: str | None = None,
              warmup: Warmup | None = None) -> gr.Blocks:
    """Lay out the UI around the models in ``options`` (a choice appears when there are
    several), writing reports into ``folder``; ``labels`` is the label set selected at start;
    ``warmup``'s status is shown until it is done."""
    if labels is not None and labels not in builtin_label_sets():
        raise SystemExit(f"--labels must be one of {', '.join(builtin_label_sets())}; got {labels!r}.")
    with_defaults = any(o.predictor.default_labels for o in options)
    choices = [*builtin_label_sets(), CUSTOM] + ([CHECKPOINT] if with_defaults else [])
    models = {o.title: o for o in options}
    with gr.Blocks(title="KG-CLIP: explainable fine-grained action recognition", delete_cache=(600, 3600)) as demo:
        header = header_panel(options, warmup)
        session = gr.State(None, time_to_live=SESSION_TTL_S)
        with gr.Tabs() as tabs:
            with gr.Tab("Recognise", id="recognise"):
                with gr.Row():
                    with gr.Column(scale=1):
                        clip = clip_panel(choices, labels or default_labels(options[0]))
                    with gr.Column(scale=2):
                        result_for, chart = result_panel()
                        contrast = contrast_panel()
                        heatmaps = heatmap_panel()
                        report = report_panel()
                clip_timeline = timeline_panel()
                evidence, evidence_note = evidence_panel()
                units, timeline = units_panel()
                alignment, alignment_note, kg_view = alignment_and_concepts_panel()
                deep = deep_panel()
                details = details_panel()
            kg = kg_panel(labels)
        explanations = ExplanationPanels(contrast, heatmaps, evidence, evidence_note, units, timeline, alignment,
                                         alignment_note, kg_view)
        results = ResultPanels(chart, explanations, result_for, details)
        # In the page's order (Gradio numbers the events, fn_index, in the order they are connected):
        # the examples, the header, the Recognise tab's areas, the Knowledge-graph tab, then the
        # webcam, the comparison with a rival and the timeline (added later: the events before them
        # kept their numbers).
        wire_examples(clip)
        wire_header(demo, header, model_events.ModelChoice(models, warmup), clip.label_set)
        wire_recognise(clip_events.Recogniser(models), header.model, clip, results, deep, report, session)
        wire_heatmaps(heatmaps, session)
        reports = report_events.Reports(folder.reports)
        wire_report(reports, report, heatmaps, session)
        deep_run = wire_deep(explanation_events.DeepExplanation(models), deep, heatmaps.opacity, session)
        wire_kg(kg, tabs, clip, session)
        wire_webcam(clip)
        wire_contrast(explanation_events.ContrastChoice(models), contrast, heatmaps, session)
        wire_timeline(timeline_events.TimelineEvents(models), reports, header.model, clip, clip_timeline, results,
                      session)
        # Last, so the events above keep their numbers: a new clip cancels a running deep explanation
        # (its worker is free once the passes stop: DeepExplanation.deep_explanation).
        clip.video.change(None, None, None, cancels=[deep_run], api_visibility="private")
    return demo
