"""The one bridge from the knowledge graph to the model: a label set's texts as ClassInputs.

The model knows nothing of networkx; the graph knows nothing of tensors. This adapter turns
a label set and its KnowledgeGraph into the prompts, semantic units, class-unit links and
triples that :meth:`KGClipModel.encode_classes` embeds.
"""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np

from kgclip_core.errors import ConfigError
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.labels import LabelSet
from kgclip_core.model.kgclip import ClassInputs
from kgclip_core.model.config import CLASS_TEXTS
from kgclip_core.prompts import class_prompts

# The graph's relation names -> the triplet encoder's; the encoder adds inverses itself.
MODEL_RELATIONS = {
    "action_movement": "action-movement",
    "video_action": "video-action",
    "video_movement": "video-movement",
}


# A text that is several kinds of concept is typed by the first of these it is.
UNIT_TYPE_PRECEDENCE = ("movement", "motion", "part_state", "object", "scene", "body_part")
_PRECEDENCE = {t: i for i, t in enumerate(UNIT_TYPE_PRECEDENCE)}


def _prompts(label_set: LabelSet, kg: KnowledgeGraph, class_text: str) -> list[list[str]]:
    names = class_prompts(label_set.display_names)
    if class_text == "name":
        return names
    if class_text == "description":
        # A typed label's parsed "description" only restates the label: keep its name prompts.
        return [[kg.description(c)] if kg.confidence(c) == "curated" else prompts
                for c, prompts in zip(label_set.classes, names)]
    raise ConfigError(f"class_text must be one of {CLASS_TEXTS}, got {class_text!r}.")


def class_inputs(label_set: LabelSet, kg: KnowledgeGraph, class_text: str = "name") -> ClassInputs:
    """Prompts, semantic units and action-movement triples of every class of ``label_set``.

    ``class_text`` says what the class embedding is made of: the name in the prompt
    templates (``name``) or the class's knowledge-graph description (``description``,
    classification by description). Classes are named by their display
    names, so word-level interaction (WTI) sees words ("Apply Eye Makeup"), and the graph's
    action labels, which are display names too, match the class embeddings in the triples.

    A semantic unit is a text: the graph can hold one text as two kinds of concept (the
    movement "torso lean" and the part state "torso lean"; "comb" as motion and object), and
    both are the same embedding, so they are one unit, typed by its most specific kind
    (``UNIT_TYPE_PRECEDENCE``). Kept twice, such a text would count twice in a class's unit
    score and take two of the selection's slots.
    """
    unit_texts: list[str] = []
    unit_types: list[str] = []
    index: dict[str, int] = {}
    class_units: list[list[int]] = []
    for name in label_set.classes:
        ids: dict[int, None] = {}  # ordered, without repeats
        for unit_type, texts in kg.units_of(name).items():
            for text in texts:
                if text not in index:
                    index[text] = len(unit_texts)
                    unit_texts.append(text)
                    unit_types.append(unit_type)
                elif _PRECEDENCE[unit_type] < _PRECEDENCE[unit_types[index[text]]]:
                    unit_types[index[text]] = unit_type
                ids[index[text]] = None
        class_units.append(list(ids))
    triples = [(h, MODEL_RELATIONS[r], t) for h, r, t in kg.triples() if r in MODEL_RELATIONS]
    return ClassInputs(
        names=list(label_set.display_names),
        prompts=_prompts(label_set, kg, class_text),
        unit_texts=unit_texts,
        unit_types=unit_types,
        class_units=class_units,
        triples=triples,
    )


# Concept kinds that say what a class does; body parts ("arm", "leg") are the anatomy nearly
# every action names, so no shuffle can keep a class from sharing one of those.
CLASS_SPECIFIC_UNITS = ("movement", "part_state", "motion", "object")


def _donors(inputs: ClassInputs, rng: np.random.Generator) -> tuple[list[int], int]:
    """A random donor for every class, and the most class-specific units any class shares with
    its donor: no class is its own donor, no two share one, and that overlap is the least any
    such assignment allows (0 when one exists: nothing of a class's own stays with it).

    A bipartite matching (Hopcroft-Karp) of classes to donors over the pairs that share at most
    ``k`` units, for k = 0, 1, ... until every class has one; the edges' random order (``rng``)
    makes the matching differ by seed."""
    specific = [{u for u in units if inputs.unit_types[u] in CLASS_SPECIFIC_UNITS} for units in inputs.class_units]
    c = len(inputs.names)
    receivers = [("class", i) for i in range(c)]
    for k in itertools.count():  # at the largest overlap every pair qualifies: a derangement exists
        pairs = [(i, d) for i in range(c) for d in range(c) if d != i and len(specific[i] & specific[d]) <= k]
        graph = nx.Graph()
        graph.add_nodes_from(receivers)
        graph.add_edges_from((("class", i), ("donor", d)) for i, d in (pairs[j] for j in rng.permutation(len(pairs))))
        match = nx.bipartite.hopcroft_karp_matching(graph, top_nodes=receivers)
        if all(r in match for r in receivers):
            return [match[r][1] for r in receivers], k


def shuffled_knowledge(inputs: ClassInputs, seed: int, prompts_from_kg: bool) -> ClassInputs:
    """The shuffled-KG control: every class gets another class's knowledge, all of it: its
    semantic units, its KG edges and, when the prompts are the KG's descriptions
    (``prompts_from_kg``), its description. The donor is drawn at random (fixed by ``seed``)
    among the classes that share no movement, part state, motion or object with the class, so
    nothing of a class's own knowledge stays with it (``_donors``); names stay (they are the
    labels, not knowledge).

    A model trained on it has the same texts, modules and losses as with the real graph, but
    knowledge that describes another action; what it still gains is not the knowledge's.
    """
    c = len(inputs.names)
    if c < 2:
        raise ConfigError("Shuffling the knowledge between classes needs at least two classes.")
    donor, _ = _donors(inputs, np.random.default_rng(seed))
    # Class i takes the knowledge of class donor[i]: that class's name becomes i's in the triples.
    rename = {inputs.names[donor[i]]: inputs.names[i] for i in range(c)}
    prompts = [inputs.prompts[donor[i]] if prompts_from_kg else inputs.prompts[i] for i in range(c)]
    return ClassInputs(
        names=list(inputs.names),
        prompts=[list(p) for p in prompts],
        unit_texts=list(inputs.unit_texts),
        unit_types=list(inputs.unit_types),
        class_units=[list(inputs.class_units[donor[i]]) for i in range(c)] if inputs.class_units else [],
        triples=[(rename.get(h, h), r, rename.get(t, t)) for h, r, t in inputs.triples],
    )
