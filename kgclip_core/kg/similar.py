"""The curated actions a typed label looks like, so a learner can go from "tennis serve" to the
curated knowledge of Kinetics-400's "playing tennis".

A label is compared with every curated action of every built-in label set on two things: the
words of the names (stemmed, so "serving" meets "serve"; "playing" and other words that name
no action left out) and the concepts of their knowledge (body-part movements, their
part-state pairs, motions, objects, scenes), each a weighted overlap. The score is in [0, 1]; a
curated action sharing nothing with the label is never offered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from kgclip_core.kg.knowledge import ActionKnowledge, curated_label_sets, load_knowledge
from kgclip_core.labels import display_name

# How much each kind of shared concept counts; a shared name word counts NAME_WEIGHT.
CONCEPT_WEIGHTS = {"movement": 3.0, "part_state": 2.0, "motion": 2.0, "object": 2.0, "scene": 0.5}
NAME_WEIGHT = 3.0
MIN_SCORE = 0.1
# Words of action names that say nothing about which action it is.
_STOP_WORDS = {"a", "an", "the", "of", "on", "in", "at", "to", "with", "and", "or", "up", "down", "doing",
               "playing", "play", "making", "using", "person", "someone", "something"}
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Lookalike:
    """A curated action close to a label: where it is, its name, and how close (0 to 1)."""

    label_set: str
    action: str
    score: float

    @property
    def display_name(self) -> str:
        """The action's name for people."""
        return display_name(self.action)


def _stem(word: str) -> str:
    """A crude common stem, the same for both sides of a comparison: serve, serving, serves -> serv."""
    for suffix in ("ing", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _words(name: str) -> frozenset[str]:
    """Content words of a name, stemmed."""
    return frozenset(_stem(w) for w in _WORD.findall(display_name(name).lower()) if w not in _STOP_WORDS)


def _concepts(knowledge: ActionKnowledge) -> dict[str, frozenset[str]]:
    return {
        "movement": frozenset(f"{m.part} {m.state} {m.object or ''}".strip() for m in knowledge.movements),
        "part_state": frozenset(f"{m.part} {m.state}" for m in knowledge.movements),
        "motion": frozenset(knowledge.motions),
        "object": frozenset(knowledge.objects) | frozenset(m.object for m in knowledge.movements if m.object),
        "scene": frozenset(knowledge.scenes),
    }


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    # Ochiai (cosine of the sets): a big curated entry is not punished for knowing more.
    return len(a & b) / (len(a) * len(b)) ** 0.5 if a and b else 0.0


@lru_cache(maxsize=1)
def _curated() -> tuple[tuple[str, str, frozenset[str], dict[str, frozenset[str]]], ...]:
    """Every curated action once (the first label set naming it): set, name, words, concepts."""
    seen: set[str] = set()
    entries = []
    for label_set in curated_label_sets():
        for name, knowledge in load_knowledge(label_set).items():
            key = display_name(name).casefold()
            if key not in seen:
                seen.add(key)
                entries.append((label_set, name, _words(name), _concepts(knowledge)))
    return tuple(entries)


def lookalikes(label: str, knowledge: ActionKnowledge, limit: int = 3) -> list[Lookalike]:
    """The ``limit`` curated actions closest to ``label`` (whose knowledge is ``knowledge``),
    best first; the label's own curated entry, if it has one, is left out."""
    words, concepts = _words(label), _concepts(knowledge)
    total = NAME_WEIGHT + sum(CONCEPT_WEIGHTS.values())
    own = display_name(label).casefold()
    scored = []
    for label_set, name, other_words, other in _curated():
        if display_name(name).casefold() == own:
            continue
        score = NAME_WEIGHT * _overlap(words, other_words)
        score += sum(w * _overlap(concepts[kind], other[kind]) for kind, w in CONCEPT_WEIGHTS.items())
        if score / total >= MIN_SCORE:
            scored.append(Lookalike(label_set, name, round(score / total, 3)))
    scored.sort(key=lambda item: (-item.score, item.action))
    return scored[:limit]
