"""The Knowledge-graph tab's events: searching a label set's actions, showing one, and
opening an action (related, clicked in the graph, curated look-alike, or predicted)."""

from __future__ import annotations

import gradio as gr

from kgclip_core import explain
from kgclip_core.errors import KGClipError
from kgclip_core.kg.render import action_view
from kgclip_core.labels import builtin_label_sets
from kgclip_ui.common import CUSTOM, Session, action_choices, cached_graph, graph_key, refusal, user_error

TYPE_LABELS = "*Type your labels in the box (comma separated) and press Enter.*"


def kg_search(label_set: str, custom: str | None, query: str | None, progress: gr.Progress = gr.Progress()) -> dict:
    """The actions of the label set matching the query (all of them for an empty query)."""
    custom, query = custom or "", query or ""  # a load event sends None for empty boxes
    if label_set == CUSTOM and not custom.strip():  # nothing typed yet: nothing is wrong
        return gr.update(choices=[], value=None)
    try:
        progress(0.0, desc="Building the knowledge graph")
        kg = cached_graph(graph_key(label_set, custom))
    except KGClipError as err:
        raise user_error(err) from err
    found = kg.search(query, limit=200) if query.strip() else kg.actions
    return gr.update(choices=action_choices(kg, found), value=found[0] if found else None)


def kg_action(label_set: str, custom: str | None, action: str | None) -> tuple[str, str, dict, dict]:
    """One action's description (Markdown), graph (HTML) and related actions (choices)."""
    if not action:
        typing = label_set == CUSTOM and not (custom or "").strip()
        nothing = gr.update(choices=[], value=None)
        return (TYPE_LABELS if typing else "*Pick an action.*"), "", nothing, gr.update(choices=[], visible=False)
    try:
        kg = cached_graph(graph_key(label_set, custom or ""))
        view = action_view(kg, action)
    except KGClipError as err:
        raise user_error(err) from err
    looks_like = [(f"{like.display_name} ({like.label_set})", f"{like.label_set}:{like.action}")
                  for like in view.looks_like]
    return (explain.action_markdown(view), view.html, gr.update(choices=action_choices(kg, view.related), value=None),
            gr.update(choices=looks_like, value=None, visible=bool(looks_like)))


def open_curated(choice: str | None) -> tuple[str, str, str, dict]:
    """The Knowledge-graph tab on a curated action (``label_set:action``) a typed label looks like."""
    label_set, _, action = (choice or "").partition(":")
    if label_set not in builtin_label_sets() or not cached_graph(label_set).has_action(action):
        raise refusal("Pick one of the curated actions listed.")
    kg = cached_graph(label_set)
    return label_set, "", "", gr.update(choices=action_choices(kg, kg.actions), value=action)


def open_action(label_set: str, custom: str | None, related: str | None, clicked: str | None) -> tuple:
    """Open an action of the label set (a related one from the list, or one clicked in the
    graph); the search is cleared so the action is among the choices."""
    action = clicked or related
    kg = cached_graph(graph_key(label_set, custom or ""))
    if not action or not kg.has_action(action):  # the emptied box, or a stale click: nothing to open
        return gr.skip(), gr.skip(), ""
    return "", gr.update(choices=action_choices(kg, kg.actions), value=kg.graph.nodes[kg.action_node(action)]["name"]), ""


def open_in_kg(session: Session | None, action: str | None) -> tuple[gr.Tabs, str, str, str, dict]:
    """The Knowledge-graph tab on a predicted action, with the prediction's label set."""
    if session is None or not action:
        raise refusal("Recognise a clip first, then pick one of its predicted actions.")
    labels = session.labels
    label_set, custom = (labels.name, "") if labels.builtin else (CUSTOM, "\n".join(labels.classes))
    kg = cached_graph(graph_key(label_set, custom))
    return gr.Tabs(selected="kg"), label_set, custom, "", gr.update(choices=action_choices(kg, kg.actions), value=action)
