"""The explanation in words: why the top action and not its rival, and "not sure" when no label
fits. Plain text and table rows (no markup: the app and the report escape what they show), read
from a finished Prediction."""

from __future__ import annotations

from kgclip_core.prediction import Contrast, Evidence, Prediction

CONTRAST_COLUMNS = ["needed by", "shown", "concept", "type", "score"]


def _mark(e: Evidence) -> str:
    return "✓" if e.present else "✗"


def _listed(items: list[Evidence]) -> str:
    return ", ".join(f"{e.text} {_mark(e)}" for e in items)


def contrast_summary(contrast: Contrast) -> str:
    """One paragraph (under a heading that names both actions): what tells them apart and what the
    clip shows of it."""
    parts = []
    if contrast.own:
        parts.append(f"Only {contrast.label} needs: {_listed(contrast.own)}.")
    if contrast.rival_own:
        parts.append(f"Only {contrast.rival} needs: {_listed(contrast.rival_own)}.")
    if not contrast.own and not contrast.rival_own:
        parts.append("Their knowledge-graph entries are the same: nothing in the concepts tells them apart.")
    if contrast.shared:
        parts.append(f"Both need {len(contrast.shared)} concepts, which tell neither from the other (folded away).")
    return " ".join(parts)


def contrast_rows(contrast: Contrast) -> list[list[str]]:
    """The telling concepts as table rows (``CONTRAST_COLUMNS``): the top action's own, then its
    rival's (named by role: the actions' names, which a user may have typed, are in the summary)."""
    return [[role, _mark(e), e.text, e.type.replace("_", " "), f"{e.score:.3f}"]
            for role, items in (("the top action", contrast.own), ("the rival", contrast.rival_own)) for e in items]


def unsure_note(pred: Prediction) -> str | None:
    """When no label fits the clip well: say so, name the closest labels and what the clip shows;
    None otherwise."""
    if not pred.unsure:
        return None
    seen = ", ".join(pred.shown_concepts) or "none of the label set's concepts"
    return (f"Not sure: none of the labels fits this clip well (fit {pred.fit:.2f}: the clip shows what "
            f"{pred.labels[0]} does not have, or lacks what it needs). The closest are {', '.join(pred.labels)}. "
            f"What the clip shows: {seen}.")
