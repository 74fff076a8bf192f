"""The explanation panels: why the top action and not its rival (first, under the prediction),
the frames with a heatmap and its picker, why this action (evidence), the semantic units, the word-frame alignment beside the top action's concepts,
and the opt-in deep explanation (Integrated Gradients)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from kgclip_core import explain

# The explanation galleries' captions are a frame's name, then on its own line what the map shows
# (explain.heatmap_gallery); Gradio cuts any caption to one line. A thumbnail's label shows the
# name line alone; the enlarged preview shows the whole caption, wrapped, above the strip of
# thumbnails (Gradio leaves room for one line there), the picture taking what is left. Every
# frame shows without a scroll inside the page; on a phone two a row: four overflowed the
# screen, hiding a column of frames.
GALLERY_CSS = """
#heatmaps .grid-wrap, #deep-gallery .grid-wrap { max-height: none; }
#heatmaps .caption-label, #deep-gallery .caption-label {
  white-space: pre; max-height: calc(1.5em + 2 * var(--spacing-sm)); line-height: 1.5em; }
#heatmaps .preview .media-button, #deep-gallery .preview .media-button { flex: 1 1 0; min-height: 0; height: auto; }
#heatmaps .preview .caption, #deep-gallery .preview .caption {
  flex: none; white-space: pre-line; text-overflow: clip; font-size: var(--text-sm); margin-bottom: var(--size-14); }
@media (max-width: 640px) {
  #heatmaps .grid-container, #deep-gallery .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)); }
}
"""


@dataclass
class HeatmapPanel:
    """The heatmap picker (kind, map, opacity) and the sampled frames it draws on."""

    kind: gr.Radio
    which: gr.Dropdown
    opacity: gr.Slider
    gallery: gr.Gallery


@dataclass
class ContrastPanel:
    """Why the top action and not a rival: "not sure" when no label fits, the telling concepts,
    and the rival to compare with (the runner-up first)."""

    note: gr.Markdown
    rival: gr.Dropdown
    table: gr.Dataframe


@dataclass
class ExplanationPanels:
    """Every explanation panel a prediction fills."""

    contrast: ContrastPanel
    heatmaps: HeatmapPanel
    evidence: gr.Dataframe
    evidence_note: gr.Markdown
    units: gr.Dataframe
    timeline: gr.Plot
    alignment: gr.Plot
    alignment_note: gr.Markdown
    kg_view: gr.HTML

    def outputs(self) -> list:
        """The components ``kgclip_ui.handlers.explanations.explanation_views`` fills, in its order."""
        return [self.heatmaps.kind, self.heatmaps.which, self.heatmaps.gallery, self.evidence, self.evidence_note,
                self.units, self.timeline, self.alignment, self.alignment_note, self.kg_view, self.contrast.note,
                self.contrast.rival, self.contrast.table]


@dataclass
class DeepPanel:
    """The opt-in Integrated Gradients explanation."""

    steps: gr.Slider
    run: gr.Button
    note: gr.Markdown
    gallery: gr.Gallery


def contrast_panel() -> ContrastPanel:
    """Why the top action and not its rival: the concepts one needs and the other lacks, marked
    against the clip; the shared ones are folded away."""
    note = gr.Markdown(elem_id="contrast-note")
    rival = gr.Dropdown([], label="Compare with", info="why the top action and not this one (the runner-up first)",
                        elem_id="contrast-rival")
    table = gr.Dataframe(headers=explain.why.CONTRAST_COLUMNS, label="What tells them apart (✓ = the clip shows it)",
                         interactive=False, elem_id="contrast-table")
    return ContrastPanel(note, rival, table)


def heatmap_panel() -> HeatmapPanel:
    """The heatmap's kind, map and opacity, and the sampled frames with the chosen heatmap."""
    with gr.Row():
        kind = gr.Radio([], label="Heatmap", info="evidence: the top action's own concepts; regions: MRA; "
                                                  "units: the semantic units the model selected; rival: the "
                                                  "concepts only the compared action needs")
        which = gr.Dropdown([], label="Map")
        opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Opacity", elem_id="opacity")
    # "contain": each picture is the raw frame, the overlay and a colour bar side by side; a cropped
    # thumbnail would cut off the bar and half the frame.
    gallery = gr.Gallery(label="Sampled frames with heatmaps", columns=4, height="auto", object_fit="contain",
                         elem_id="heatmaps")
    return HeatmapPanel(kind, which, opacity, gallery)


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
        # "contain", as the heatmaps: each picture is the frame, its attribution and a colour bar.
        gallery = gr.Gallery(label="Attribution to the top class", columns=4, height="auto", object_fit="contain",
                             elem_id="deep-gallery")
    return DeepPanel(steps, run, note, gallery)
