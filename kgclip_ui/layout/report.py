"""The report: a button that makes an HTML report and a heatmap video of the prediction,
and the files to download."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

# The file box grows to its two files (a fixed height hid half the MP4's row); empty, it stays
# low instead of Gradio's tall drop area.
REPORT_CSS = "#report-files .empty { min-height: var(--size-24); }"


@dataclass
class ReportPanel:
    """The take-away: an HTML report and a heatmap video of the prediction."""

    run: gr.Button
    files: gr.File


def report_panel() -> ReportPanel:
    """A button that makes the report and the heatmap video, and the files to download."""
    with gr.Row():
        run = gr.Button("Make a report to download (HTML + MP4)", scale=1, elem_id="make-report")
        files = gr.File(label="Report: open the HTML in any browser; the MP4 is the clip with the heatmap",
                        file_count="multiple", interactive=False, scale=2, elem_id="report-files")
    return ReportPanel(run, files)
