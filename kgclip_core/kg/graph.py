"""The knowledge graph of a label set: actions and the multi-grained concepts they share.

Nodes are typed (``action``, ``movement``, ``body_part``, ``part_state``, ``motion``,
``object``, ``scene``); each has an ``id`` of the form ``<type>:<key>``, a ``type`` and a
human-readable ``label`` (for an action, its display name; its class name is ``name``).
Edges carry a ``relation``:

    action   -involves->      movement      ("right hand swing racket")
    movement -of_body_part->  body_part      movement -in_state->  part_state ("hand swing")
    movement -uses_object->   object         part_state -of_body_part-> body_part
    action   -uses_object->   object         action -occurs_in-> scene
    action   -has_motion->    motion         action -involves_part-> body_part (parsed labels)
    body_part -part_of->      body_part (the lexicon hierarchy, between parts present)

Concept nodes are shared, so "hand swing" links tennis, golf and badminton. The graph gives
the model its semantic units (ASU) and its triples (KG-CLIP), and the app its views.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import networkx as nx

from kgclip_core.errors import ConfigError, LabelError
from kgclip_core.kg.knowledge import ActionKnowledge, Movement
from kgclip_core.kg.lexicon import Lexicon, default_lexicon
from kgclip_core.kg.resolve import knowledge_for, knowledge_for_label_set
from kgclip_core.labels import LabelSet, display_name, load_label_set

NODE_TYPES = ("action", "movement", "body_part", "part_state", "motion", "object", "scene")
UNIT_TYPES = ("body_part", "part_state", "movement", "motion", "object", "scene")
RELATIONS = (
    "involves", "of_body_part", "in_state", "uses_object", "occurs_in", "has_motion", "involves_part", "part_of",
)
# KG-CLIP's training relations, each with its inverse.
INVERSE = {
    "action_movement": "movement_action",
    "video_action": "action_video",
    "video_movement": "movement_video",
}
# The (source type, target type) each relation may join: a loaded graph (a checkpoint's kg.json)
# is checked against it, so the views can follow edges without meeting a loop or a wrong type.
RELATION_ENDS = {
    "involves": {("action", "movement")},
    "of_body_part": {("movement", "body_part"), ("part_state", "body_part")},
    "in_state": {("movement", "part_state")},
    "uses_object": {("action", "object"), ("movement", "object")},
    "occurs_in": {("action", "scene")},
    "has_motion": {("action", "motion")},
    "involves_part": {("action", "body_part")},
    "part_of": {("body_part", "body_part")},
}
FORMAT_VERSION = 1
# The most a loaded graph (a checkpoint's kg.json) may hold, checked before it is built: a graph of
# 10,000 classes (a checkpoint's most) at Kinetics-400's density (5.5 nodes, 20 edges a class; no
# node with more than 20 outgoing edges) fits with room. A 34 MB kg.json with one action
# involving 200,000 movements took 389 s to load and predict before these caps.
MAX_KG_NODES = 100_000
MAX_KG_EDGES = 250_000
MAX_KG_FANOUT = 256  # edges from one node (an action's concepts)
_REQUIRED = {"action": {"label", "name", "index", "description", "confidence"}}


def _valid_node(data: dict) -> bool:
    """A node of a known type with its required fields, each of the type the views expect."""
    if not isinstance(data.get("type"), str) or data["type"] not in NODE_TYPES:
        return False
    required = _REQUIRED.get(data["type"], {"label"})
    return required <= set(data) and all(
        isinstance(data[k], int) and not isinstance(data[k], bool) if k == "index" else isinstance(data[k], str)
        for k in required)


def node_id(node_type: str, key: str) -> str:
    """The id of a node: ``<type>:<key>``."""
    return f"{node_type}:{key}"


class _Builder:
    """Adds actions to a networkx graph, sharing concept nodes between them."""

    def __init__(self, graph: nx.DiGraph, lexicon: Lexicon):
        self.g = graph
        self.lex = lexicon

    def node(self, node_type: str, key: str, **attrs) -> str:
        nid = node_id(node_type, key)
        if nid not in self.g:
            self.g.add_node(nid, type=node_type, label=key, **{k: v for k, v in attrs.items() if v is not None})
        return nid

    def edge(self, source: str, target: str, relation: str) -> None:
        self.g.add_edge(source, target, relation=relation)

    def body_part(self, part: str) -> str:
        nid = node_id("body_part", part)
        if nid in self.g:
            return nid
        self.node("body_part", part)
        # Link to the parts already present, both up and down the hierarchy.
        for child in self.lex.body_parts.values():
            if child.parent == part and node_id("body_part", child.name) in self.g:
                self.edge(node_id("body_part", child.name), nid, "part_of")
        parent = self.lex.body_parts[part].parent
        if parent and node_id("body_part", parent) in self.g:
            self.edge(nid, node_id("body_part", parent), "part_of")
        return nid

    def object(self, obj: str) -> str:
        return self.node("object", obj, category=self.lex.object_category(obj) or "other")

    def movement(self, m: Movement) -> str:
        nid = self.node("movement", m.phrase, part=m.part, state=m.state, side=m.side, object=m.object)
        part = self.body_part(m.part)
        state = self.node("part_state", f"{m.part} {m.state}", part=m.part, state=m.state)
        self.edge(nid, part, "of_body_part")
        self.edge(nid, state, "in_state")
        self.edge(state, part, "of_body_part")
        if m.object:
            self.edge(nid, self.object(m.object), "uses_object")
        return nid

    def action(self, name: str, entry: ActionKnowledge, index: int) -> None:
        aid = self.node(
            "action", name, index=index, description=entry.description, confidence=entry.confidence,
        )
        self.g.nodes[aid].update(label=display_name(name), name=name)
        for m in entry.movements:
            self.edge(aid, self.movement(m), "involves")
        movement_objects = [m.object for m in entry.movements if m.object]
        for obj in dict.fromkeys([*entry.objects, *movement_objects]):
            self.edge(aid, self.object(obj), "uses_object")
        for scene in entry.scenes:
            self.edge(aid, self.node("scene", scene, category=self.lex.scene_category(scene) or "other"), "occurs_in")
        for motion in entry.motions:
            self.edge(aid, self.node("motion", motion), "has_motion")
        for part, _side in entry.extra.get("body_parts", []):
            self.edge(aid, self.body_part(part), "involves_part")


class KnowledgeGraph:
    """A typed concept graph over the classes of one label set (read-only once built)."""

    def __init__(self, graph: nx.DiGraph):
        self.graph = graph

    # Construction --------------------------------------------------------------------------

    @classmethod
    def from_knowledge(
        cls, knowledge: Mapping[str, ActionKnowledge], name: str = "custom", lexicon: Lexicon | None = None
    ) -> KnowledgeGraph:
        """A graph from class name -> knowledge, in the mapping's order."""
        graph = nx.DiGraph(name=name, version=FORMAT_VERSION)
        builder = _Builder(graph, lexicon or default_lexicon())
        for index, (action, entry) in enumerate(knowledge.items()):
            builder.action(action, entry, index)
        return cls(graph)

    @classmethod
    def for_label_set(cls, labels: LabelSet | str | Sequence[str]) -> KnowledgeGraph:
        """The graph of a built-in set (by name), a label file, a LabelSet or a list of labels.

        Custom labels naming a built-in class reuse its curated entry; others are parsed.
        """
        label_set = labels if isinstance(labels, LabelSet) else load_label_set(labels)
        if label_set.builtin:
            return cls(_builtin_graph(label_set.name).copy())
        return cls.from_knowledge(knowledge_for_label_set(label_set), label_set.name)

    @classmethod
    def for_label(cls, label: str) -> KnowledgeGraph:
        """A one-action graph for any label (curated if it names a built-in class, else parsed)."""
        return cls.from_knowledge({label: knowledge_for(label)}, "custom")

    # Look-ups ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The label set this graph was built for."""
        return self.graph.graph.get("name", "custom")

    def _of_type(self, node_type: str) -> list[str]:
        return [n for n, t in self.graph.nodes(data="type") if t == node_type]

    @property
    def actions(self) -> list[str]:
        """Class names, in class order."""
        nodes = sorted(self._of_type("action"), key=lambda n: self.graph.nodes[n]["index"])
        return [self.graph.nodes[n]["name"] for n in nodes]

    def action_node(self, action: str) -> str:
        """The node id of an action given its class name or display name (any case)."""
        nid = node_id("action", action)
        if nid in self.graph:
            return nid
        wanted = display_name(" ".join(str(action).split())).casefold()
        for n in self._of_type("action"):
            if self.graph.nodes[n]["label"].casefold() == wanted:
                return n
        raise LabelError(f"{str(action)[:80]!r} is not an action of the {self.name!r} knowledge graph.")

    def has_action(self, action: str) -> bool:
        """True when the action is a class of this graph."""
        try:
            self.action_node(action)
        except LabelError:
            return False
        return True

    def search(self, query: str, limit: int = 20) -> list[str]:
        """Class names whose display name contains the query (case-insensitive), best first."""
        q = " ".join(query.split()).casefold()
        scored = []
        for n in self._of_type("action"):
            label = self.graph.nodes[n]["label"].casefold()
            if q in label:
                scored.append((not label.startswith(q), len(label), self.graph.nodes[n]["name"]))
        return [name for *_, name in sorted(scored)[:limit]]

    def description(self, action: str) -> str:
        """The one- or two-sentence description of an action."""
        return self.graph.nodes[self.action_node(action)]["description"]

    def confidence(self, action: str) -> str:
        """``curated`` or ``parsed``."""
        return self.graph.nodes[self.action_node(action)]["confidence"]

    def _targets(self, source: str, relation: str) -> list[str]:
        return [v for _, v, r in self.graph.out_edges(source, data="relation") if r == relation]

    def _label(self, node: str) -> str:
        return self.graph.nodes[node]["label"]

    # Semantic units and triples --------------------------------------------------------------

    def semantic_units(self, type: str | None = None) -> list[str]:
        """Unit texts of one type (see UNIT_TYPES), or of every type when ``type`` is None."""
        if type is not None and type not in UNIT_TYPES:
            raise ConfigError(f"Unknown semantic-unit type {type!r}; use one of {', '.join(UNIT_TYPES)}.")
        types = UNIT_TYPES if type is None else (type,)
        texts = [self._label(n) for t in types for n in self._of_type(t)]
        return list(dict.fromkeys(texts))

    def units_of(self, action: str) -> dict[str, list[str]]:
        """The units linked to one action, by type (empty lists for absent types)."""
        aid = self.action_node(action)
        units: dict[str, list[str]] = {t: [] for t in UNIT_TYPES}
        nodes = list(self.graph.successors(aid))
        for m in self._targets(aid, "involves"):
            nodes += self.graph.successors(m)
        for n in dict.fromkeys(nodes):
            units[self.graph.nodes[n]["type"]].append(self._label(n))
        return units

    def triples_of(self, action: str) -> list[tuple[str, str, str]]:
        """Every (head, relation, tail) about one action and its movements, as texts."""
        aid = self.action_node(action)
        heads = [aid, *self._targets(aid, "involves")]
        return [
            (self._label(u), r, self._label(v)) for h in heads for u, v, r in self.graph.out_edges(h, data="relation")
        ]

    def _concept_nodes(self, aid: str) -> set[str]:
        """Concepts of an action that can tell it apart (body parts alone are too common)."""
        nodes = set(self.graph.successors(aid))
        for m in self._targets(aid, "involves"):
            nodes.update(self.graph.successors(m))
        return {n for n in nodes if self.graph.nodes[n]["type"] != "body_part"}

    def related(self, action: str, k: int = 5) -> list[tuple[str, int]]:
        """The k actions sharing most concepts with this one, as (class name, shared count)."""
        aid = self.action_node(action)
        mine = self._concept_nodes(aid)
        scores = [
            (len(mine & self._concept_nodes(other)), self.graph.nodes[other]["name"])
            for other in self._of_type("action")
            if other != aid
        ]
        ranked = sorted((s for s in scores if s[0] > 0), key=lambda s: (-s[0], s[1]))
        return [(name, count) for count, name in ranked[:k]]

    def movements_of(self, action: str) -> list[str]:
        """The body-part movement phrases of an action."""
        return [self._label(m) for m in self._targets(self.action_node(action), "involves")]

    def triples(self, videos: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
        """KG-CLIP's training triples: action-movement with its inverse for every action, and
        for each ``video id -> action`` given, video-action and video-movement with inverses."""
        out: list[tuple[str, str, str]] = []
        for action in self.actions:
            a = self._label(self.action_node(action))
            for m in self.movements_of(action):
                out += [(a, "action_movement", m), (m, INVERSE["action_movement"], a)]
        for video, action in (videos or {}).items():
            out += self.video_triples(video, action)
        return out

    def video_triples(self, video: str, action: str) -> list[tuple[str, str, str]]:
        """Triples tying one training video to its action and that action's movements."""
        a = self._label(self.action_node(action))
        out = [(video, "video_action", a), (a, INVERSE["video_action"], video)]
        for m in self.movements_of(action):
            out += [(video, "video_movement", m), (m, INVERSE["video_movement"], video)]
        return out

    # Views ---------------------------------------------------------------------------------

    def subgraph(self, actions: Iterable[str], units: Iterable[str] | None = None) -> KnowledgeGraph:
        """The given actions with their concepts; with ``units``, only the concepts named there."""
        keep_units = None if units is None else set(units)
        nodes: list[str] = []
        for action in actions:
            aid = self.action_node(action)
            nodes.append(aid)
            nodes += nx.descendants(self.graph, aid)
        keep = {
            n for n in nodes
            if self.graph.nodes[n]["type"] == "action" or keep_units is None or self._label(n) in keep_units
        }
        return KnowledgeGraph(self.graph.subgraph([n for n in self.graph if n in keep]).copy())

    def stats(self) -> dict:
        """Node and edge counts by type, and the share of actions with each kind of concept."""
        actions = self._of_type("action")

        def share(relations: set[str]) -> float:
            have = [a for a in actions if any(r in relations for *_, r in self.graph.out_edges(a, data="relation"))]
            return len(have) / len(actions) if actions else 0.0

        node_types = Counter(t for _, t in self.graph.nodes(data="type"))
        relations = Counter(r for *_, r in self.graph.edges(data="relation"))
        return {
            "label_set": self.name,
            "nodes": self.graph.number_of_nodes(),
            "edges": self.graph.number_of_edges(),
            "nodes_by_type": {t: node_types.get(t, 0) for t in NODE_TYPES},
            "edges_by_relation": {r: relations.get(r, 0) for r in RELATIONS},
            "confidence": dict(Counter(self.graph.nodes[a]["confidence"] for a in actions)),
            "coverage": {
                "movement": share({"involves"}),
                "motion": share({"has_motion"}),
                "object_or_motion": share({"uses_object", "has_motion"}),
                "scene": share({"occurs_in"}),
            },
        }

    # Serialisation ---------------------------------------------------------------------------

    def to_json(self) -> dict:
        """Node-link form: ``nodes`` ``{id, type, label, ...}``, ``edges`` ``{source, target, relation}``."""
        return nx.node_link_data(self.graph, edges="edges")

    @classmethod
    def from_json(cls, data: Mapping) -> KnowledgeGraph:
        """The graph back from :meth:`to_json` output; raises ConfigError if it is not one."""
        _check_size(data)
        try:
            graph = nx.node_link_graph(dict(data), directed=True, multigraph=False, edges="edges")
        except (KeyError, TypeError, ValueError, AttributeError, nx.NetworkXError) as err:
            raise ConfigError(f"Not a knowledge-graph JSON (node-link form with 'nodes' and 'edges'): {err}") from None
        bad = [n for n, d in graph.nodes(data=True) if not _valid_node(d)]
        if bad or any(r not in RELATIONS for *_, r in graph.edges(data="relation")):
            raise ConfigError(f"Knowledge-graph JSON has nodes or edges of unknown type or missing fields (e.g. {bad[:1]}).")
        _check_edges(graph)
        return cls(graph)

    def save(self, path: str | Path) -> Path:
        """Write the JSON form to a file."""
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> KnowledgeGraph:
        """Read a graph written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"Cannot read knowledge graph {str(path)!r}: {err}") from err
        return cls.from_json(data)


def _check_size(data: Mapping) -> None:
    """Raise ConfigError for node-link JSON with more nodes, edges or edges from one node than the
    caps (``MAX_KG_*``); counted on the plain lists, before any graph is built. Malformed lists
    are left to the parser's own message."""
    if not isinstance(data, Mapping):
        return
    nodes, edges = data.get("nodes"), data.get("edges")
    if isinstance(nodes, list) and len(nodes) > MAX_KG_NODES:
        raise ConfigError(f"Knowledge-graph JSON has {len(nodes)} nodes; at most {MAX_KG_NODES} are loaded.")
    if not isinstance(edges, list):
        return
    if len(edges) > MAX_KG_EDGES:
        raise ConfigError(f"Knowledge-graph JSON has {len(edges)} edges; at most {MAX_KG_EDGES} are loaded.")
    fanout = Counter(e["source"] for e in edges if isinstance(e, dict) and isinstance(e.get("source"), str))
    if fanout:
        node, count = fanout.most_common(1)[0]
        if count > MAX_KG_FANOUT:
            raise ConfigError(f"Knowledge-graph JSON: node {node[:80]!r} has {count} edges; at most {MAX_KG_FANOUT} "
                              "edges may leave one node (an action's concepts).")


def _check_edges(graph: nx.DiGraph) -> None:
    """Raise ConfigError for an edge joining the wrong types of node (which also rules out
    every loop but the body-part hierarchy's) or a loop in that hierarchy."""
    for u, v, relation in graph.edges(data="relation"):
        ends = (graph.nodes[u]["type"], graph.nodes[v]["type"])
        if ends not in RELATION_ENDS[relation]:
            raise ConfigError(f"Knowledge-graph JSON: the {relation!r} edge {u!r} -> {v!r} joins node types "
                              f"{ends}; it may only join {sorted(RELATION_ENDS[relation])}.")
    hierarchy = graph.edge_subgraph((u, v) for u, v, r in graph.edges(data="relation") if r == "part_of")
    if not nx.is_directed_acyclic_graph(hierarchy):
        loop = " -> ".join(u for u, _ in nx.find_cycle(hierarchy))
        raise ConfigError(f"Knowledge-graph JSON: the body-part hierarchy has a loop ({loop}); "
                          "a part cannot be part of itself.")


@lru_cache(maxsize=None)
def _builtin_graph(name: str) -> nx.DiGraph:
    """Built once per process: built-in sets are fixed, and parsing fallbacks cost seconds."""
    return KnowledgeGraph.from_knowledge(knowledge_for_label_set(name), name).graph
