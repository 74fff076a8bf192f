"""Why one action and not its rival: the concepts that tell two classes apart, marked against the clip.

Fine-grained classes differ in one or two concepts ("wave right hand" and "wave left hand" by the
hand; "wave right hand" and "punch with right arm" by what the arm and hand do). The concepts
both classes need explain neither over the other, so they are folded away; what is left are the
concepts one needs and the other lacks, each with the clip's mark (``kgclip_core.evidence``): a
right prediction shows its own ✓ and its rival's ✗.
"""

from __future__ import annotations

from kgclip_core.evidence import ConceptMarks, concepts_of, evidence_items
from kgclip_core.labels import LabelSet
from kgclip_core.model.kgclip import ClassFeatures
from kgclip_core.prediction import Contrast


def contrast(marks: ConceptMarks, classes: ClassFeatures, label_set: LabelSet, label: int, rival: int) -> Contrast:
    """Class ``label`` against class ``rival`` (indices into ``label_set``) on one clip's ``marks``."""
    own, theirs = set(concepts_of(classes, label)), set(concepts_of(classes, rival))
    return Contrast(label=label_set.display_names[label], rival=label_set.display_names[rival], rival_index=rival,
                    own=evidence_items(marks, classes, sorted(own - theirs)),
                    rival_own=evidence_items(marks, classes, sorted(theirs - own)),
                    shared=[classes.unit_texts[u] for u in sorted(own & theirs)])


def rival_units(classes: ClassFeatures, result: Contrast) -> list[int]:
    """The unit indices of ``result.rival_own``, in its order (their maps' order)."""
    where = {t: u for u, t in enumerate(classes.unit_texts)}
    return [where[e.text] for e in result.rival_own]
