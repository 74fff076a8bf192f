"""Views of the knowledge graph: an interactive pyvis page, a text tree, and the app's panel.

The HTML works offline and inside a sandboxed iframe: it uses a template of our own instead
of pyvis's (which always pulls Bootstrap from a CDN) and inlines the vis-network script that
pyvis ships. User text (labels, descriptions) reaches the page only as JSON inside a script,
serialised with Jinja's ``tojson``, which escapes ``<``, ``>``, ``&`` and quotes; vis-network
draws labels on a canvas and shows string tooltips as plain text. So a label such as
``<img src=x onerror=alert(1)>`` is displayed as text and never becomes an element.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from kgclip_core.kg.graph import UNIT_TYPES, KnowledgeGraph

NODE_COLOURS = {
    "action": "#d1495b",
    "movement": "#edae49",
    "body_part": "#00798c",
    "part_state": "#66a5ad",
    "motion": "#8ab17d",
    "object": "#7d5ba6",
    "scene": "#2e4057",
}
SELECTED_COLOUR = "#ff1f1f"
_NODE_SIZE = {"action": 22, "movement": 14}
_PAGE = "kgclip_graph.html"
# vis-network is fed through pyvis's own loader; only the tooltip needs styling.
_TEMPLATE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<script>{% include 'lib/vis-9.1.2/vis-network.min.js' %}</script>
<style>
body { margin: 0; font-family: sans-serif; }
#kg { width: {{ width }}; height: {{ height }}; background: {{ bgcolor }}; position: relative; }
.vis-tooltip { position: absolute; visibility: hidden; padding: 6px; max-width: 360px;
  white-space: pre-wrap; font-size: 13px; background: #fffbea; border: 1px solid #888;
  border-radius: 3px; box-shadow: 2px 2px 8px rgba(0,0,0,.2); pointer-events: none; z-index: 5; }
.legend { font-size: 12px; padding: 4px 8px; }
.legend span { display: inline-block; margin-right: 10px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 4px; }
</style>
</head>
<body>
<div class="legend">{% for name, colour in legend %}<span><i style="background: {{ colour }}"></i>{{ name }}</span>{% endfor %}</div>
<div id="kg"></div>
<script>
var nodes = new vis.DataSet({{ nodes|tojson }});
var edges = new vis.DataSet({{ edges|tojson }});
var network = new vis.Network(document.getElementById("kg"), {nodes: nodes, edges: edges}, {{ options|safe }});
var selected = {{ selected|tojson }};
if (selected !== null) {
  network.once("stabilizationIterationsDone", function () {
    network.selectNodes([selected]);
    network.focus(selected, {scale: 1.0, animation: false});
  });
}
</script>
</body>
</html>
"""


def _network(height: str, width: str):
    """A pyvis Network whose template renders our offline page."""
    import pyvis
    from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader
    from pyvis.network import Network

    net = Network(height=height, width=width, directed=True, cdn_resources="in_line")
    pyvis_templates = Path(pyvis.__file__).parent / "templates"
    net.templateEnv = Environment(loader=ChoiceLoader([DictLoader({_PAGE: _TEMPLATE}), FileSystemLoader(pyvis_templates)]))
    net.path = _PAGE
    return net


def _tooltip(data: dict) -> str:
    if data["type"] == "action":
        return f"{data['label']} ({data['confidence']})\n{data['description']}"
    extra = f" ({data['category']})" if "category" in data else ""
    return f"{data['type'].replace('_', ' ')}: {data['label']}{extra}"


def graph_html(kg: KnowledgeGraph, selected: str | None = None, height: str = "560px", width: str = "100%") -> str:
    """A self-contained interactive HTML page of the graph, ``selected`` action highlighted."""
    net = _network(height, width)
    selected_id = kg.action_node(selected) if selected is not None else None
    for node, data in kg.graph.nodes(data=True):
        is_selected = node == selected_id
        net.add_node(
            node,
            label=data["label"],
            title=_tooltip(data),
            color=SELECTED_COLOUR if is_selected else NODE_COLOURS[data["type"]],
            size=_NODE_SIZE.get(data["type"], 10) * (1.6 if is_selected else 1.0),
            borderWidth=4 if is_selected else 1,
        )
    for source, target, relation in kg.graph.edges(data="relation"):
        net.add_edge(source, target, label=relation.replace("_", " "), title=relation, arrows="to")
    net.set_options(
        '{"edges": {"font": {"size": 9, "align": "middle"}, "color": {"inherit": false}, "smooth": false},'
        ' "nodes": {"font": {"size": 13}},'
        ' "physics": {"solver": "forceAtlas2Based", "stabilization": {"iterations": 200}},'
        ' "interaction": {"hover": true, "tooltipDelay": 150}}'
    )
    net.templateEnv.globals.update(
        selected=selected_id, legend=[(t.replace("_", " "), c) for t, c in NODE_COLOURS.items()]
    )
    return net.generate_html()


def iframe(page: str, height: int = 600) -> str:
    """The page wrapped in a sandboxed iframe (``srcdoc`` escaped), ready for an HTML component."""
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" '
        f'style="width: 100%; height: {int(height)}px; border: 0;"></iframe>'
    )


def concept_tree(kg: KnowledgeGraph, action: str) -> str:
    """A plain-text tree of an action's concepts, for terminals and text boxes."""
    aid = kg.action_node(action)
    data = kg.graph.nodes[aid]
    units = kg.units_of(action)
    lines = [f"{data['label']}  [{data['confidence']}]", f"  {data['description']}"]
    sections = [
        ("movements", [_movement_line(kg, m) for m in units["movement"]]),
        ("body parts", units["body_part"]),
        ("objects", [f"{o} ({kg.graph.nodes['object:' + o]['category']})" for o in units["object"]]),
        ("motions", units["motion"]),
        ("scenes", [f"{s} ({kg.graph.nodes['scene:' + s]['category']})" for s in units["scene"]]),
    ]
    sections = [(name, items) for name, items in sections if items]
    for i, (name, items) in enumerate(sections):
        last = i == len(sections) - 1
        lines.append(f"  {'└─' if last else '├─'} {name}")
        for j, item in enumerate(items):
            lines.append(f"  {'   ' if last else '│  '}{'└─' if j == len(items) - 1 else '├─'} {item}")
    return "\n".join(lines)


def _movement_line(kg: KnowledgeGraph, phrase: str) -> str:
    m = kg.graph.nodes[f"movement:{phrase}"]
    parts = [f"part={m['part']}", f"state={m['state']}"]
    parts += [f"{k}={m[k]}" for k in ("side", "object") if k in m]
    return f"{phrase}  ({', '.join(parts)})"


@dataclass(frozen=True)
class ActionView:
    """What the app's knowledge-graph tab shows for one action."""

    action: str
    display_name: str
    description: str
    confidence: str
    movements: list[str]
    units: dict[str, list[str]]
    related: list[str]
    tree: str
    html: str = field(repr=False)


def action_view(kg: KnowledgeGraph, action: str, related: int = 4, height: int = 560) -> ActionView:
    """An action's description, concepts and an iframe of it with the actions sharing most concepts.

    The graph shows the action, its concepts, and the ``related`` actions linked through the
    concepts they share with it (their other concepts are left out to keep it readable).
    """
    aid = kg.action_node(action)
    name = kg.graph.nodes[aid]["name"]
    units = kg.units_of(name)
    neighbours = [a for a, _ in kg.related(name, related)]
    shared = {u for t in UNIT_TYPES for u in units[t]}
    view = kg.subgraph([name, *neighbours], units=shared)
    page = graph_html(view, selected=name, height=f"{height - 40}px")
    return ActionView(
        action=name,
        display_name=kg.graph.nodes[aid]["label"],
        description=kg.description(name),
        confidence=kg.confidence(name),
        movements=units["movement"],
        units=units,
        related=neighbours,
        tree=concept_tree(kg, name),
        html=iframe(page, height),
    )
