"""The timeline of a long clip: its button, the chart of its segments, the segments in words,
the hidden box a click on a segment fills, and the script that turns that click into the box's
change and moves the clip's player to the segment's start."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from kgclip_core.timeline import MAX_DURATION_S, MAX_WINDOWS, STRIDE_S, WINDOW_S
from kgclip_ui.common import SESSION_TTL_S

# A click on a segment's bar (plotly_click; customdata [index, start s]) moves the player to the
# segment's start and puts "index#click" into the hidden #timeline-pick box, whose change explains
# the segment (the count makes a second click on the same segment a change too). Only a number
# crosses, and the server checks it. Gradio draws a new chart into the same page, so every plot
# that appears is hooked, once.
TIMELINE_JS = """<script>
(function () {
  var clicks = 0;
  function hook(plot) {
    if (plot.dataset.kgclipTimeline || typeof plot.on !== "function") return;
    plot.dataset.kgclipTimeline = "1";
    plot.on("plotly_click", function (data) {
      var point = data && data.points && data.points[0];
      if (!point || point.data.type !== "bar" || !point.customdata) return;
      var index = Number(point.customdata[0]), start = Number(point.customdata[1]);
      if (!Number.isInteger(index) || !isFinite(start)) return;
      var video = document.querySelector("#player video");
      if (video) { video.currentTime = start; }
      var box = document.querySelector("#timeline-pick textarea, #timeline-pick input");
      if (!box) return;
      clicks += 1;
      box.value = index + "#" + clicks;
      box.dispatchEvent(new Event("input", {bubbles: true}));
    });
  }
  new MutationObserver(function () {
    document.querySelectorAll("#timeline-plot .js-plotly-plot").forEach(hook);
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
</script>"""


@dataclass
class TimelinePanel:
    """The timeline's button, chart and words; the box a click fills; the session's timeline."""

    run: gr.Button
    chart: gr.Plot
    segments: gr.Markdown
    pick: gr.Textbox
    state: gr.State
    report: gr.Button
    report_file: gr.File


def timeline_panel() -> TimelinePanel:
    """What happens when in the clip: windows over all of it, merged into segments, to click."""
    with gr.Accordion("Timeline: what happens when (for long clips)", open=True, elem_id="timeline-box"):
        gr.Markdown(f"Windows of {WINDOW_S:g} s, one every {STRIDE_S:g} s, over the whole clip, each recognised "
                    "on its own; consecutive windows with the same action make a segment. Clips of up to "
                    f"{MAX_DURATION_S / 60:.0f} minutes ({MAX_WINDOWS} windows), within the server's time "
                    "budget. Click a segment: its explanation fills the panels above, and the clip plays from there.")
        run = gr.Button("Make the timeline", elem_id="timeline-run")
        chart = gr.Plot(label="Timeline", elem_id="timeline-plot")
        segments = gr.Markdown(elem_id="timeline-segments")
        # A click on a segment lands here (see TIMELINE_JS); hidden, not absent.
        pick = gr.Textbox(visible="hidden", elem_id="timeline-pick")
        with gr.Row():
            report = gr.Button("Make the timeline's report to download (HTML)", scale=1, elem_id="timeline-report")
            report_file = gr.File(label="Timeline report: open it in any browser (segments, stills, concepts)",
                                  interactive=False, scale=2, elem_id="timeline-report-file")
    state = gr.State(None, time_to_live=SESSION_TTL_S)
    return TimelinePanel(run, chart, segments, pick, state, report, report_file)
