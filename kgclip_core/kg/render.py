"""Views of the knowledge graph: an interactive pyvis page, a text tree, and the app's panel.

The page is laid out in layers, left to right, as an action is read: the action, then its
movements and motions, then part states, objects and scenes, then body parts, then the related
actions (``LEVELS``). Nodes are boxes whose labels wrap inside them, the layout is fixed (no
physics) with room for each box, and the relation of an edge shows on hover instead of as text
on the edge, so no text overlaps; the page is sized to its tallest column (``layered_height``)
and fitted to its width, unless that makes its text too small to read (``MIN_SCALE``, a phone):
then it starts at the action and pans, and a hint on the graph says which way the rest lies.
The legend sits above the graph, outside it. A click on an action node other than the one shown
posts ``{"kgclip": "open-action", "action": name}`` to the parent page (the app opens that
action); the page needs nothing from the parent.

The HTML works offline and inside a sandboxed iframe: it uses a template of our own instead
of pyvis's (which always pulls Bootstrap from a CDN) and inlines the vis-network script that
pyvis ships. User text (labels, descriptions) reaches the page only as JSON inside a script,
serialised with Jinja's ``tojson``, which escapes ``<``, ``>``, ``&`` and quotes; vis-network
draws labels on a canvas and shows string tooltips as plain text. So a label such as
``<img src=x onerror=alert(1)>`` is displayed as text and never becomes an element.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from kgclip_core.kg.graph import UNIT_TYPES, KnowledgeGraph
from kgclip_core.kg.resolve import knowledge_for
from kgclip_core.kg.similar import Lookalike, lookalikes

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
# Layer (column, left to right) of each node type; actions other than the one shown go last.
LEVELS = {"action": 0, "movement": 1, "motion": 1, "part_state": 2, "object": 2, "scene": 2, "body_part": 3}
RELATED_LEVEL = 4
ROW_PX = 58  # vertical room per box in a column (a label wraps to at most two lines)
MIN_HEIGHT, MAX_HEIGHT = 260, 1400
LEGEND_PX = 64  # the legend above the graph (the graph takes what it leaves: more lines on a phone)
MIN_SCALE = 0.75  # below this the labels are too small to read: the view pans instead of shrinking
_PAGE = "kgclip_graph.html"
# vis-network is fed through pyvis's own loader; only the tooltip needs styling.
_TEMPLATE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<script>{% include 'lib/vis-9.1.2/vis-network.min.js' %}</script>
<style>
html, body { height: 100%; }
/* The graph takes what the legend leaves of the frame: the legend wraps to more lines on a phone. */
body { margin: 0; font-family: sans-serif; display: flex; flex-direction: column; }
#kg { width: {{ width }}; height: {{ height }}; flex: 1 1 auto; min-height: 0; background: {{ bgcolor }};
  position: relative; border-top: 1px solid #ddd; }
.vis-tooltip { position: absolute; visibility: hidden; padding: 6px; max-width: 360px;
  white-space: pre-wrap; font-size: 13px; background: #fffbea; border: 1px solid #888;
  border-radius: 3px; box-shadow: 2px 2px 8px rgba(0,0,0,.2); pointer-events: none; z-index: 5; }
.legend { font-size: 12px; padding: 4px 8px; line-height: 1.6; }
.legend span { display: inline-block; margin-right: 10px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 4px; }
#pan-hint { position: absolute; right: 6px; top: 6px; display: none; padding: 3px 8px; font-size: 13px;
  background: rgba(255, 251, 234, 0.95); border: 1px solid #888; border-radius: 12px; pointer-events: none;
  z-index: 4; }
</style>
</head>
<body>
<div class="legend">{% for name, colour in legend %}<span><i style="background: {{ colour }}"></i>{{ name }}</span>{% endfor %}<span>· read left to right; hover for details; click an action to open it; drag to move, scroll or pinch to zoom</span></div>
<div id="kg"></div>
<script>
var nodes = new vis.DataSet({{ nodes|tojson }});
var edges = new vis.DataSet({{ edges|tojson }});
var network = new vis.Network(document.getElementById("kg"), {nodes: nodes, edges: edges}, {{ options|safe }});
var selected = {{ selected|tojson }};
if (selected !== null) { network.selectNodes([selected]); }
// Fit the layered graph to the frame, never enlarging it past its natural size; in a frame too
// narrow for readable text (a phone) keep the text readable, the first column at the left edge,
// and let the user drag for the rest.
var MIN_SCALE = {{ min_scale }};
function fit() {
  network.fit({animation: false});
  var scale = network.getScale();
  if (scale > 1) { network.moveTo({scale: 1}); return; }
  if (scale >= MIN_SCALE) return;
  var anchor = selected !== null ? selected : nodes.getIds()[0];
  var at = network.getPositions([anchor])[anchor];
  var width = document.getElementById("kg").clientWidth;
  network.moveTo({position: {x: at.x - 90 + width / 2 / MIN_SCALE, y: at.y}, scale: MIN_SCALE, animation: false});
}
// Where part of the graph lies beyond the frame's sides (a phone), a hint says so and which way
// (added after the network: vis-network empties its container).
var hint = document.createElement("div");
hint.id = "pan-hint";
document.getElementById("kg").appendChild(hint);
function updateHint() {
  var left = Infinity, right = -Infinity;
  nodes.getIds().forEach(function (id) {
    var box = network.getBoundingBox(id);
    left = Math.min(left, box.left); right = Math.max(right, box.right);
  });
  var shown = document.getElementById("kg").clientWidth;
  var moreLeft = network.canvasToDOM({x: left, y: 0}).x < -2;
  var moreRight = network.canvasToDOM({x: right, y: 0}).x > shown + 2;
  hint.textContent = (moreLeft ? "\u2190 " : "") + "drag sideways for the rest of the graph"
    + (moreRight ? " \u2192" : "");
  hint.style.display = moreLeft || moreRight ? "block" : "none";
}
network.once("afterDrawing", function () { fit(); updateHint(); });
window.addEventListener("resize", function () { fit(); updateHint(); });
network.on("dragEnd", updateHint);
network.on("zoom", updateHint);
network.on("click", function (params) {
  var node = params.nodes.length ? nodes.get(params.nodes[0]) : null;
  if (node && node.action && node.id !== selected) {
    window.parent.postMessage({kgclip: "open-action", action: node.action}, "*");
  }
});
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


def _levels(kg: KnowledgeGraph, selected_id: str | None) -> dict[str, int]:
    """Each node's layer; with no action selected every action is in the first."""
    def level(node: str, kind: str) -> int:
        if kind == "action" and selected_id is not None and node != selected_id:
            return RELATED_LEVEL
        return LEVELS[kind]

    return {node: level(node, kind) for node, kind in kg.graph.nodes(data="type")}


def layered_height(kg: KnowledgeGraph, selected: str | None = None) -> int:
    """Pixels the layered graph needs: its tallest column of boxes, within MIN/MAX_HEIGHT."""
    levels = _levels(kg, kg.action_node(selected) if selected is not None else None)
    tallest = max((list(levels.values()).count(level) for level in set(levels.values())), default=1)
    return int(min(MAX_HEIGHT, max(MIN_HEIGHT, tallest * ROW_PX + 40)))


def _text_colour(background: str) -> str:
    """Black or white, whichever reads better on the box colour."""
    red, green, blue = (int(background[i:i + 2], 16) for i in (1, 3, 5))
    return "#111111" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "#ffffff"


def graph_html(kg: KnowledgeGraph, selected: str | None = None, height: str | None = None,
               width: str = "100%") -> str:
    """A self-contained interactive HTML page of the graph in layers, ``selected`` action
    highlighted; ``height`` defaults to :func:`layered_height`."""
    net = _network(height or f"{layered_height(kg, selected)}px", width)
    selected_id = kg.action_node(selected) if selected is not None else None
    levels = _levels(kg, selected_id)
    for node, data in kg.graph.nodes(data=True):
        colour = SELECTED_COLOUR if node == selected_id else NODE_COLOURS[data["type"]]
        extra = {"action": data["name"]} if data["type"] == "action" else {}
        net.add_node(node, label=data["label"], title=_tooltip(data), level=levels[node], shape="box",
                     color=colour, font={"color": _text_colour(colour)},
                     borderWidth=3 if node == selected_id else 1, **extra)
    for source, target, relation in kg.graph.edges(data="relation"):
        net.add_edge(source, target, title=relation.replace("_", " "), arrows="to")
    net.set_options(json.dumps({
        "layout": {"hierarchical": {"enabled": True, "direction": "LR", "levelSeparation": 200,
                                    "nodeSpacing": ROW_PX, "treeSpacing": ROW_PX, "blockShifting": True,
                                    "edgeMinimization": True, "parentCentralization": True}},
        "physics": {"enabled": False},
        "nodes": {"font": {"size": 14}, "widthConstraint": {"maximum": 150}, "margin": 6},
        "edges": {"color": {"color": "#9a9a9a", "inherit": False}, "arrows": {"to": {"scaleFactor": 0.5}},
                  "smooth": {"type": "cubicBezier", "forceDirection": "horizontal", "roundness": 0.5}},
        "interaction": {"hover": True, "tooltipDelay": 150},
    }))
    net.templateEnv.globals.update(
        selected=selected_id, min_scale=MIN_SCALE, legend=[(t.replace("_", " "), c) for t, c in NODE_COLOURS.items()]
    )
    return net.generate_html()


def graph_iframe(kg: KnowledgeGraph, selected: str | None = None) -> str:
    """The layered page of ``kg`` in an iframe sized to it (graph and legend)."""
    return iframe(graph_html(kg, selected), layered_height(kg, selected) + LEGEND_PX)


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
    looks_like: list[Lookalike] = field(default_factory=list)  # closest curated actions of a parsed label


def action_view(kg: KnowledgeGraph, action: str, related: int = 4) -> ActionView:
    """An action's description, concepts and an iframe of it with the actions sharing most concepts.

    The graph shows the action, its concepts, and the ``related`` actions linked through the
    concepts they share with it (their other concepts are left out to keep it readable). A
    parsed (typed) label also gets the curated actions it looks like.
    """
    aid = kg.action_node(action)
    name = kg.graph.nodes[aid]["name"]
    units = kg.units_of(name)
    neighbours = [a for a, _ in kg.related(name, related)]
    shared = {u for t in UNIT_TYPES for u in units[t]}
    view = kg.subgraph([name, *neighbours], units=shared)
    return ActionView(
        action=name,
        display_name=kg.graph.nodes[aid]["label"],
        description=kg.description(name),
        confidence=kg.confidence(name),
        movements=units["movement"],
        units=units,
        related=neighbours,
        tree=concept_tree(kg, name),
        html=graph_iframe(view, selected=name),
        looks_like=[] if kg.confidence(name) == "curated" else lookalikes(name, knowledge_for(name)),
    )
