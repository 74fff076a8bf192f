"""The curated knowledge base: per built-in label set, what each action is made of.

Each file ``data/knowledge/<label_set>.json`` holds, for every class of that label set, a
short description, the body-part movements (body part, optional side, part state, optional
object), and the objects, scenes and motions involved. Every concept must come from the
lexicon (``data/lexicon.json``); a file may declare extra objects under ``"objects"``.

Run ``python -m kgclip_core.kg.knowledge FILE...`` to validate files.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from kgclip_core.errors import LabelError
from kgclip_core.kg.lexicon import KNOWLEDGE_DIR, load_lexicon_data
from kgclip_core.labels import LABELS_DIR

# How much to trust an entry: written and checked by a person, or built by the parser from
# the label alone. The weights let a consumer (model, UI) rank or down-weight parsed entries.
CONFIDENCE_WEIGHTS = {"curated": 1.0, "parsed": 0.5}


_PLURALS = {"foot": "feet", "fingers": "fingers"}


@dataclass(frozen=True)
class Movement:
    """One body-part movement, e.g. ``right hand swing racket``."""

    part: str
    state: str
    side: str | None = None
    object: str | None = None

    @property
    def phrase(self) -> str:
        """The movement as a short phrase: ``[side] part state [object]``, e.g.
        ``right hand swing racket``; with both sides the part is plural (``both feet push``)."""
        part = _PLURALS.get(self.part, self.part + "s") if self.side == "both" else self.part
        words = [self.side, part, self.state, self.object]
        return " ".join(w for w in words if w)


@dataclass(frozen=True)
class ActionKnowledge:
    """What one action class is made of."""

    name: str
    description: str
    movements: tuple[Movement, ...]
    objects: tuple[str, ...] = ()
    scenes: tuple[str, ...] = ()
    motions: tuple[str, ...] = ()
    confidence: str = "curated"
    extra: dict = field(default_factory=dict, compare=False)


def validate_knowledge(data: dict, class_names: list[str] | None = None) -> list[str]:
    """Check a knowledge-base dict against the lexicon; return the list of problems."""
    lex = load_lexicon_data()
    parts = lex["body_parts"]
    scenes = {s for group in lex["scenes"].values() for s in group}
    motions = set(lex["motions"])
    objects = set(lex["objects"]) | set(data.get("objects", {}))
    problems: list[str] = []
    for obj, cat in data.get("objects", {}).items():
        if cat not in lex["object_categories"]:
            problems.append(f"object {obj!r}: unknown category {cat!r}")
    classes = data.get("classes", {})
    if class_names is not None:
        missing = [c for c in class_names if c not in classes]
        extra = [c for c in classes if c not in class_names]
        problems += [f"missing class {c!r}" for c in missing]
        problems += [f"class not in label set {c!r}" for c in extra]
    for name, entry in classes.items():
        where = f"{name!r}"
        if not entry.get("description", "").strip():
            problems.append(f"{where}: empty description")
        if not entry.get("movements"):
            problems.append(f"{where}: no movements")
        if not entry.get("motions"):
            problems.append(f"{where}: no motions")
        for m in entry.get("movements", []):
            part, state, side, obj = m.get("part"), m.get("state"), m.get("side"), m.get("object")
            if part not in parts:
                problems.append(f"{where}: unknown body part {part!r}")
                continue
            if state not in lex["part_states"][part]:
                problems.append(f"{where}: state {state!r} not allowed for {part!r}")
            if side is not None and (side not in lex["sides"] or not parts[part]["lateral"]):
                problems.append(f"{where}: side {side!r} not allowed for {part!r}")
            if obj is not None and obj not in objects:
                problems.append(f"{where}: unknown object {obj!r} in movement")
        problems += [f"{where}: unknown object {o!r}" for o in entry.get("objects", []) if o not in objects]
        problems += [f"{where}: unknown scene {s!r}" for s in entry.get("scenes", []) if s not in scenes]
        problems += [f"{where}: unknown motion {s!r}" for s in entry.get("motions", []) if s not in motions]
    return problems


def curated_label_sets() -> list[str]:
    """Names of the label sets that have a curated knowledge file."""
    return sorted(p.stem for p in KNOWLEDGE_DIR.glob("*.json"))


def _parse_entry(name: str, entry: dict) -> ActionKnowledge:
    return ActionKnowledge(
        name=name,
        description=entry["description"].strip(),
        movements=tuple(Movement(m["part"], m["state"], m.get("side"), m.get("object")) for m in entry["movements"]),
        objects=tuple(entry.get("objects", ())),
        scenes=tuple(entry.get("scenes", ())),
        motions=tuple(entry.get("motions", ())),
    )


@lru_cache(maxsize=None)
def load_knowledge(label_set: str) -> dict[str, ActionKnowledge]:
    """The curated knowledge of a built-in label set, keyed by class name."""
    if label_set not in curated_label_sets():
        known = ", ".join(curated_label_sets())
        raise LabelError(f"No curated knowledge for label set {label_set!r}; curated sets: {known}.")
    data = json.loads((KNOWLEDGE_DIR / f"{label_set}.json").read_text(encoding="utf-8"))
    return {name: _parse_entry(name, entry) for name, entry in data["classes"].items()}


def _main(paths: list[str]) -> int:
    status = 0
    for p in paths:
        path = Path(p)
        data = json.loads(path.read_text(encoding="utf-8"))
        names_file = LABELS_DIR / f"{data.get('label_set', path.stem)}.txt"
        names = names_file.read_text(encoding="utf-8").splitlines() if names_file.is_file() else None
        problems = validate_knowledge(data, names)
        print(f"{path}: {len(data.get('classes', {}))} classes, {len(problems)} problems")
        for line in problems:
            print("  -", line)
        status |= bool(problems)
    return status


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
