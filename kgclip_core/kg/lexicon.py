"""The project's concept vocabulary and the look-ups the parser needs.

``data/lexicon.json`` fixes the concepts every knowledge entry may use: body parts (with
their hierarchy and laterality), the states each part can be in, motion primitives, scenes
(indoor or outdoor) and objects (with a category). Knowledge files may declare extra objects;
:func:`default_lexicon` folds in the ones declared by every file present.

``data/parser_lexicon.json`` adds the words people use for those concepts ("teeth" is the
mouth, "hands" is both hands, "bike" is a bicycle, "hurl" is a throw) and how a verb maps to
a movement when a label names no body part.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
KNOWLEDGE_DIR = DATA_DIR / "knowledge"

_SEPARATORS = re.compile(r"[\s_\-]+")


@lru_cache(maxsize=1)
def load_lexicon_data() -> dict:
    """The raw lexicon (body parts, part states, motions, scenes, objects)."""
    return json.loads((DATA_DIR / "lexicon.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def load_parser_data() -> dict:
    """The raw parser aids (synonyms, aliases, verb-to-movement defaults)."""
    return json.loads((DATA_DIR / "parser_lexicon.json").read_text(encoding="utf-8"))


def normalise(text: str) -> str:
    """Lower-case text with hyphens, underscores and runs of spaces made single spaces."""
    return _SEPARATORS.sub(" ", text.strip().lower()).strip()


def singular_forms(word: str) -> list[str]:
    """Plausible singulars of an English noun (``dishes`` -> ``dish``, ``knives`` -> ``knife``)."""
    forms = []
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("ves") and len(word) > 4:
        forms += [word[:-3] + "f", word[:-3] + "fe"]
    if word.endswith("es") and len(word) > 3:
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        forms.append(word[:-1])
    return forms


def declared_objects(knowledge_dir: Path = KNOWLEDGE_DIR) -> dict[str, str]:
    """Objects (name -> category) declared by every knowledge file present."""
    objects: dict[str, str] = {}
    for path in sorted(knowledge_dir.glob("*.json")):
        try:
            objects.update(json.loads(path.read_text(encoding="utf-8")).get("objects", {}))
        except (OSError, json.JSONDecodeError) as err:
            # A file being written by someone else must not break every look-up.
            log.warning("Skipping unreadable knowledge file %s: %s", path, err)
    return objects


@dataclass(frozen=True)
class BodyPart:
    """One body part of the hierarchy; ``lateral`` parts have a left and a right."""

    name: str
    parent: str | None
    lateral: bool


class Lexicon:
    """Concept look-ups over the lexicon and the parser aids."""

    def __init__(self, data: dict, parser_data: dict, extra_objects: Mapping[str, str] | None = None):
        self.body_parts = {
            name: BodyPart(name, spec["parent"], bool(spec["lateral"])) for name, spec in data["body_parts"].items()
        }
        self.sides: tuple[str, ...] = tuple(data["sides"])
        self.part_states: dict[str, tuple[str, ...]] = {p: tuple(s) for p, s in data["part_states"].items()}
        self.motions: tuple[str, ...] = tuple(data["motions"])
        self.scenes: dict[str, str] = {s: cat for cat, group in data["scenes"].items() for s in group}
        self.object_categories: tuple[str, ...] = tuple(data["object_categories"])
        self.objects: dict[str, str] = {**data["objects"], **(extra_objects or {})}
        self._part_words = {normalise(w): (p, side) for w, (p, side) in parser_data["body_part_words"].items()}
        self._verb_synonyms: dict[str, str] = parser_data["verb_synonyms"]
        self._object_aliases = {normalise(k): v for k, v in parser_data["object_aliases"].items()}
        self._scene_aliases = {normalise(k): v for k, v in parser_data["scene_aliases"].items()}
        self._verb_objects: dict[str, str] = parser_data["verb_objects"]
        self._verb_movements = {v: tuple(pm) for v, pm in parser_data["verb_movements"].items()}
        self._part_preference: tuple[str, ...] = tuple(parser_data["part_preference"])
        self.handheld_categories = frozenset(parser_data["handheld_categories"])
        self._object_keys = {normalise(o): o for o in self.objects}
        self._scene_keys = {normalise(s): s for s in self.scenes}
        self._states = {s for states in self.part_states.values() for s in states}
        self._motions = set(self.motions)

    # Hierarchy -----------------------------------------------------------------------------

    def ancestors(self, part: str) -> list[str]:
        """The parents of a body part up to the whole body, nearest first."""
        chain = []
        parent = self.body_parts[part].parent
        while parent is not None:
            chain.append(parent)
            parent = self.body_parts[parent].parent
        return chain

    def states_of(self, part: str) -> tuple[str, ...]:
        """The states a body part can be in."""
        return self.part_states.get(part, ())

    def scene_category(self, scene: str) -> str | None:
        """``indoor`` or ``outdoor`` for a lexicon scene, else None."""
        return self.scenes.get(scene)

    def object_category(self, obj: str) -> str | None:
        """The category of a lexicon or declared object, else None."""
        return self.objects.get(obj)

    # Words to concepts ---------------------------------------------------------------------

    def body_part(self, word: str) -> tuple[str, str | None] | None:
        """(part, side) for a body-part word: ``teeth`` -> (mouth, None), ``hands`` -> (hand, both)."""
        key = normalise(word)
        if key in self._part_words:
            return self._part_words[key]
        return (key, None) if key in self.body_parts else None

    def object(self, phrase: str) -> str | None:
        """The lexicon object a phrase names (plurals, aliases and hyphen variants allowed)."""
        return self._lookup(phrase, self._object_keys, self._object_aliases)

    def scene(self, phrase: str) -> str | None:
        """The lexicon scene a phrase names (plurals and aliases allowed)."""
        return self._lookup(phrase, self._scene_keys, self._scene_aliases)

    @staticmethod
    def _lookup(phrase: str, keys: Mapping[str, str], aliases: Mapping[str, str]) -> str | None:
        key = normalise(phrase)
        head, _, last = key.rpartition(" ")
        variants = [key] + [f"{head} {s}".strip() for s in singular_forms(last)]
        for variant in variants:
            if variant in keys:
                return keys[variant]
            if variant in aliases:
                return aliases[variant]
        return None

    def verb(self, lemma: str) -> str | None:
        """The lemma itself if it is a motion or part state, else its synonym's, else None."""
        if lemma in self._motions or lemma in self._states:
            return lemma
        return self._verb_synonyms.get(lemma)

    def motion(self, lemma: str) -> str | None:
        """The motion primitive a verb lemma stands for, else None."""
        if lemma in self._motions:
            return lemma
        synonym = self._verb_synonyms.get(lemma)
        return synonym if synonym in self._motions else None

    def verb_object(self, lemma: str) -> str | None:
        """The object a verb implies (``skateboard`` -> skateboard, ``bike`` -> bicycle)."""
        return self._verb_objects.get(lemma)

    def default_movement(self, lemmas: list[str]) -> tuple[str, str] | None:
        """(part, state) for a verb when the label names no body part that can do it.

        ``lemmas`` are the verb's forms to try, most literal first (``raise`` before ``lift``).
        """
        for lemma in lemmas:
            if lemma in self._verb_movements:
                part, state = self._verb_movements[lemma]
                return part, state
        for lemma in lemmas:
            for part in self._part_preference:
                if lemma in self.part_states[part]:
                    return part, lemma
        return None


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The lexicon with the objects declared by the knowledge files present at first use."""
    return Lexicon(load_lexicon_data(), load_parser_data(), declared_objects())
