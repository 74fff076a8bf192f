"""Which knowledge-graph concepts a synthetic clip really shows, frame by frame: the ground truth
every ✓ and ✗ of an explanation is held against.

The renderer records the state of every body part and the objects of every frame
(:func:`~kgclip_core.synth.render.render_clip`); the knowledge graph's concept nodes say what each
concept is made of (a movement node carries its part, side, state and object). So a concept
happens in a frame when:

- a **movement** ("right hand hold ball"): that part is in that state (and the object is there);
- a **part state** ("hand wave"): a part of that name, either side, is in that state;
- a **body part** ("leg"): a part of that name leaves its resting state (it moves);
- an **object** ("ball"): it is in the picture;
- a **motion** ("wave"): a program of the clip's action with that motion word is running, i.e.
  one of the movements it drives happens.

Decided from the renderer's record and the action's programs alone, never from a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kgclip_core.kg.graph import KnowledgeGraph, node_id
from kgclip_core.synth.actions import Action, get_action
from kgclip_core.synth.figure import rest_state
from kgclip_core.synth.regions import part_key

CONCEPT_TYPES = ("movement", "part_state", "body_part", "object", "motion")


def _keys(frame: dict, part: str) -> list[str]:
    """The frame's part keys of a part name, either side: "hand" -> right and left hand."""
    return [key for key in frame["parts"] if key == part or key.endswith(f" {part}")]


def _object_seen(frame: dict, name: str) -> bool:
    return any(o["name"] == name and o["box"] is not None for o in frame["objects"])


def _movement_happens(frame: dict, part: str, side: str | None, state: str, obj: str | None) -> bool:
    drawn = frame["parts"].get(part_key(part, side))
    return drawn is not None and drawn["state"] == state and (obj is None or _object_seen(frame, obj))


def _happens(frame: dict, kg: KnowledgeGraph, text: str, kind: str, motions: dict[str, list[tuple]]) -> bool:
    if kind == "movement":
        node = kg.graph.nodes[node_id("movement", text)]
        return _movement_happens(frame, node["part"], node.get("side"), node["state"], node.get("object"))
    if kind == "part_state":
        node = kg.graph.nodes[node_id("part_state", text)]
        return any(frame["parts"][k]["state"] == node["state"] for k in _keys(frame, node["part"]))
    if kind == "body_part":
        return any(frame["parts"][k]["state"] != rest_state(k) for k in _keys(frame, text))
    if kind == "object":
        return _object_seen(frame, text)
    if kind == "motion":
        return any(_movement_happens(frame, *m) for m in motions.get(text, ()))
    return False  # scenes: the synthetic world has none


def concept_presence(truth: dict, kg: KnowledgeGraph, concepts: Sequence[tuple[str, str]],
                     frames: Sequence[int] | None = None, action: Action | None = None) -> np.ndarray:
    """Bool [F, K]: whether each concept (text, type), a node of ``kg``, happens in each frame of a
    clip's ground truth ``truth`` (``frames``: positions in ``truth["frames"]``, default all).
    ``action``: the clip's action when it is not a named one (a random composition)."""
    action = action or get_action(truth["action"])
    motions: dict[str, list[tuple]] = {}
    for step in action.steps:
        driven = step.spec.expand_movements(step.sides)
        for word in step.spec.motions:
            motions.setdefault(word, []).extend(driven)
    numbers = range(len(truth["frames"])) if frames is None else frames
    return np.array([[_happens(truth["frames"][i], kg, text, kind, motions) for text, kind in concepts]
                     for i in numbers], dtype=bool).reshape(len(numbers), len(concepts))
