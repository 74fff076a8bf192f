"""Where each class's knowledge comes from: a curated entry, or the parser.

A built-in label set uses its curated file; a class the file lacks (or a set whose file is
not written yet) falls back to the parser, with a warning. A custom label reuses a curated
entry when it names a built-in class ("playing guitar", "Apply Eye Makeup", "brush_hair"),
otherwise the parser builds its knowledge from the label alone.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import lru_cache

from kgclip_core.kg.knowledge import ActionKnowledge, curated_label_sets, load_knowledge
from kgclip_core.kg.parser import check_text, knowledge_from_label
from kgclip_core.labels import LabelSet, display_name, load_label_set

log = logging.getLogger(__name__)


def _key(label: str) -> str:
    return display_name(label).casefold()


@lru_cache(maxsize=1)
def _curated_index() -> dict[str, ActionKnowledge]:
    """Every curated entry keyed by its class's display name, case-folded."""
    index: dict[str, ActionKnowledge] = {}
    for name in curated_label_sets():
        for cls, entry in load_knowledge(name).items():
            index.setdefault(_key(cls), entry)
    return index


def find_curated(label: str) -> ActionKnowledge | None:
    """The curated entry of a built-in class this label names, renamed to the label, else None."""
    entry = _curated_index().get(_key(check_text(label)))
    return dataclasses.replace(entry, name=label) if entry else None


def knowledge_for(label: str) -> ActionKnowledge:
    """Curated knowledge for a label naming a built-in class, else parsed knowledge."""
    return find_curated(label) or knowledge_from_label(label)


def knowledge_for_label_set(labels: LabelSet | str) -> dict[str, ActionKnowledge]:
    """Knowledge of every class of a label set, keyed by class name, in class order."""
    label_set = labels if isinstance(labels, LabelSet) else load_label_set(labels)
    if not label_set.builtin:
        return {cls: knowledge_for(cls) for cls in label_set.classes}
    curated = load_knowledge(label_set.name) if label_set.name in curated_label_sets() else {}
    missing = [cls for cls in label_set.classes if cls not in curated]
    if missing:
        log.warning(
            "%d of %d classes of %s have no curated knowledge yet; parsing their labels instead.",
            len(missing), len(label_set.classes), label_set.name,
        )
    return {cls: curated.get(cls) or knowledge_from_label(cls) for cls in label_set.classes}
