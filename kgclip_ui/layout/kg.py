"""The Knowledge-graph tab: a label set, a search, one action's description and graph, its
related and look-alike actions; and the script that lets the graph page open an action."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from kgclip_core.labels import builtin_label_sets
from kgclip_ui.common import CUSTOM, CUSTOM_BOX, action_choices, cached_graph

# The knowledge-graph page (a sandboxed iframe) posts the action a user clicks; this puts it in
# the hidden #kg-open box, whose change opens it. Only a string crosses, and the server checks it.
OPEN_ACTION_JS = """<script>
window.addEventListener("message", function (event) {
  // Only the page's own graph frames may open an action. They are sandboxed (origin "null"), so
  // the sender is checked by window, not origin: a page of another site that embeds the app, or
  // any other window, is ignored.
  var own = Array.prototype.some.call(document.querySelectorAll("iframe"),
                                      function (f) { return f.contentWindow === event.source; });
  if (!own || !event.data || event.data.kgclip !== "open-action") return;
  var box = document.querySelector("#kg-open textarea, #kg-open input");
  if (!box) return;
  box.value = String(event.data.action);
  box.dispatchEvent(new Event("input", {bubbles: true}));
});
</script>"""


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
                start = cached_graph(label_set.value)
                pick = gr.Dropdown(action_choices(start, start.actions), value=start.actions[0],
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
