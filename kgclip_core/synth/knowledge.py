"""Knowledge files and label lists of the synthetic label sets, derived from the programs.

The synthetic classes' knowledge (movements, motions, objects, description) is not written
by hand: it is what the generator's program definitions say, so the knowledge graph built
from it matches the ground truth of the clips exactly. The shipped files
``kg/data/knowledge/synthetic*.json`` and ``labels/synthetic*.txt`` are this module's
output; regenerate them after changing a program or an action with::

    python -m kgclip_core.synth.knowledge
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kgclip_core.kg.knowledge import LABELS_DIR, validate_knowledge
from kgclip_core.kg.lexicon import KNOWLEDGE_DIR
from kgclip_core.synth.actions import LABEL_SETS, Action, label_set_actions
from kgclip_core.synth.render import movement_dicts

GENERATED_BY = "kgclip_core.synth.knowledge (derived from the generator's programs; do not edit)"


def action_knowledge(action: Action) -> dict:
    """One class entry in the knowledge-file format."""
    return {
        "description": action.description(),
        "movements": movement_dicts(action),
        "objects": action.objects(),
        "scenes": [],
        "motions": action.motions(),
    }


def build_knowledge(label_set: str) -> dict:
    """The knowledge file of a synthetic label set, as a dict."""
    return {
        "label_set": label_set,
        "generated_by": GENERATED_BY,
        "objects": {},
        "classes": {a.name: action_knowledge(a) for a in label_set_actions(label_set)},
    }


def knowledge_text(label_set: str) -> str:
    """The knowledge file's exact text (stable key order, one trailing newline)."""
    return json.dumps(build_knowledge(label_set), indent=2) + "\n"


def labels_text(label_set: str) -> str:
    """The label list's exact text: one class name per line."""
    return "".join(a.name + "\n" for a in label_set_actions(label_set))


def write_files(knowledge_dir: Path = KNOWLEDGE_DIR, labels_dir: Path = LABELS_DIR) -> list[Path]:
    """Write the knowledge and label files of every synthetic label set; return their paths."""
    written = []
    for label_set in LABEL_SETS:
        problems = validate_knowledge(build_knowledge(label_set), [a.name for a in label_set_actions(label_set)])
        if problems:
            raise ValueError(f"{label_set}: generated knowledge is invalid: {problems}")
        for path, text in ((knowledge_dir / f"{label_set}.json", knowledge_text(label_set)),
                           (labels_dir / f"{label_set}.txt", labels_text(label_set))):
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    for p in write_files():
        print(p)
    sys.exit(0)
