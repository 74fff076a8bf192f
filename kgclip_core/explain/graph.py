"""Knowledge-graph views of a prediction and of one action, built on ``kg.render``.

The prediction's view is the top class's subgraph (``Prediction.kg``) with the concepts the
clip shows (``Prediction.evidence``, present) marked by a check and their score, and each
body-part movement with the triplet encoder's score when the model has one, so a person sees
which of the action's concepts the clip matched.
"""

from __future__ import annotations

from kgclip_core.kg.graph import UNIT_TYPES, KnowledgeGraph
from kgclip_core.kg.render import ActionView, graph_iframe
from kgclip_core.explain.text import escape_markdown
from kgclip_core.prediction import Prediction

MATCH_MARK = "✓"


def prediction_graph(pred: Prediction) -> KnowledgeGraph:
    """The top class's subgraph with the concepts the clip shows (its evidence) and scored
    movements relabelled."""
    kg = KnowledgeGraph.from_json(pred.kg)
    # A unit is a text: "torso lean" is marked both as the movement and as the part state.
    units = {e.text: e.score for e in pred.evidence if e.present}
    edges = {e.tail: e.score for e in pred.edges}
    for _, data in kg.graph.nodes(data=True):
        notes = []
        if data["type"] in UNIT_TYPES and data["label"] in units:
            notes.append(f"{MATCH_MARK} {units[data['label']]:.2f}")
        if data["type"] == "movement" and data["label"] in edges:
            notes.append(f"kg {edges[data['label']]:.2f}")
        if notes:
            data["label"] = f"{data['label']}  [{', '.join(notes)}]"
    return kg


def prediction_graph_html(pred: Prediction) -> str:
    """An iframe of :func:`prediction_graph` with the predicted action highlighted, sized to the graph."""
    return graph_iframe(prediction_graph(pred), selected=pred.class_names[0])


def action_markdown(view: ActionView) -> str:
    """An action's description, movements and other concepts as Markdown (text escaped); the app
    lists the related actions as choices, to open."""
    lines = [f"### {escape_markdown(view.display_name)}  ·  *{escape_markdown(view.confidence)}*", "",
             escape_markdown(view.description), ""]
    if view.movements:
        lines += ["**Body-part movements**", "", *(f"- {escape_markdown(m)}" for m in view.movements), ""]
    for unit_type in UNIT_TYPES:
        items = view.units.get(unit_type, [])
        if unit_type != "movement" and items:
            lines.append(f"**{unit_type.replace('_', ' ').capitalize()}s:** {escape_markdown(', '.join(items))}  ")
    return "\n".join(lines)
