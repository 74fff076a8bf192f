"""The curated knowledge base: every built-in class covered, and the validator catches mistakes."""

from __future__ import annotations

import pytest

from kgclip_core.errors import LabelError
from kgclip_core.kg.knowledge import CONFIDENCE_WEIGHTS, curated_label_sets, load_knowledge, validate_knowledge
from kgclip_core.labels import builtin_label_sets, load_label_set

# The four sets the product ships knowledge for, and any other set with a knowledge file.
SETS = sorted({"kinetics400", "ucf101", "hmdb51", "kinetics_tps24"} | set(curated_label_sets()))


def test_every_set_checked_is_a_builtin_label_set():
    assert set(SETS) <= set(builtin_label_sets())


@pytest.mark.parametrize("name", SETS)
def test_every_builtin_class_has_a_curated_entry_with_a_movement_and_a_motion(name):
    classes = load_label_set(name).classes
    knowledge = load_knowledge(name)
    assert sorted(knowledge) == sorted(classes)
    for cls in classes:
        entry = knowledge[cls]
        assert entry.confidence == "curated"
        assert entry.description.strip(), cls
        assert entry.movements, f"{cls}: no body-part movement"
        assert entry.motions, f"{cls}: no motion"


@pytest.mark.parametrize("name", SETS)
def test_every_builtin_file_passes_the_validator(name):
    import json

    from kgclip_core.kg.knowledge import KNOWLEDGE_DIR

    data = json.loads((KNOWLEDGE_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert validate_knowledge(data, list(load_label_set(name).classes)) == []


def test_validator_reports_unknown_concepts_and_bad_sides():
    data = {
        "classes": {
            "waving": {
                "description": "A person waves.",
                "movements": [
                    {"part": "tail", "state": "wag"},
                    {"part": "hand", "state": "kick"},
                    {"part": "head", "state": "nod", "side": "left"},
                    {"part": "hand", "state": "hold", "object": "spaceship"},
                ],
                "motions": ["teleport"],
                "scenes": ["moon"],
            },
            "empty": {"description": " ", "movements": [], "motions": []},
        }
    }
    problems = "\n".join(validate_knowledge(data, ["waving", "missing one"]))
    for expected in ("unknown body part 'tail'", "state 'kick' not allowed", "side 'left' not allowed",
                     "unknown object 'spaceship'", "unknown motion 'teleport'", "unknown scene 'moon'",
                     "missing class 'missing one'", "class not in label set 'empty'", "empty description",
                     "no movements"):
        assert expected in problems


def test_unknown_label_set_has_no_knowledge():
    with pytest.raises(LabelError):
        load_knowledge("no_such_set")


def test_curated_entries_outweigh_parsed_ones():
    assert CONFIDENCE_WEIGHTS["curated"] > CONFIDENCE_WEIGHTS["parsed"] > 0


def test_movement_phrase_reads_as_text():
    from kgclip_core.kg.knowledge import Movement

    assert Movement("hand", "swing", "right", "racket").phrase == "right hand swing racket"
    assert Movement("foot", "push", "both").phrase == "both feet push"
    assert Movement("hand", "clap", "both").phrase == "both hands clap"
    assert Movement("whole body", "jump").phrase == "whole body jump"
