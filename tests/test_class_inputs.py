"""The bridge from a label set's knowledge graph to the model's class inputs, on the built-in sets."""

import pytest

from kgclip_core.class_inputs import UNIT_TYPE_PRECEDENCE, class_inputs
from kgclip_core.kg.graph import UNIT_TYPES, KnowledgeGraph
from kgclip_core.labels import load_label_set


@pytest.mark.parametrize("name", ["synthetic", "hmdb51", "ucf101"])
def test_a_text_is_one_unit_whatever_kinds_of_concept_it_is(name):
    labels = load_label_set(name)
    kg = KnowledgeGraph.for_label_set(labels)
    inputs = class_inputs(labels, kg)
    assert len(set(inputs.unit_texts)) == len(inputs.unit_texts)
    kinds: dict[str, set[str]] = {}
    for cls, ids in zip(labels.classes, inputs.class_units):
        assert len(set(ids)) == len(ids), cls  # no unit twice in one class's list
        by_type = kg.units_of(cls)
        # every concept of the class, and only those, each text once
        assert {inputs.unit_texts[i] for i in ids} == {t for texts in by_type.values() for t in texts}, cls
        for unit_type, texts in by_type.items():
            for text in texts:
                kinds.setdefault(text, set()).add(unit_type)
    shared = {t: k for t, k in kinds.items() if len(k) > 1}
    assert shared  # each of these sets has texts that are two kinds of concept (the case under test)
    for text, kind in shared.items():  # typed by the most specific kind
        assert inputs.unit_types[inputs.unit_texts.index(text)] == min(kind, key=UNIT_TYPE_PRECEDENCE.index)
    assert set(UNIT_TYPE_PRECEDENCE) == set(UNIT_TYPES)


def test_a_movement_that_is_also_a_part_state_is_a_movement():
    labels = load_label_set("synthetic")
    kg = KnowledgeGraph.for_label_set(labels)
    units = kg.units_of("squat")
    assert "whole body squat" in units["movement"] and "whole body squat" in units["part_state"]
    inputs = class_inputs(labels, kg)
    squat = inputs.class_units[labels.classes.index("squat")]
    assert [inputs.unit_texts[i] for i in squat].count("whole body squat") == 1
    assert inputs.unit_types[inputs.unit_texts.index("whole body squat")] == "movement"
