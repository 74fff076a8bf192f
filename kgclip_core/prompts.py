"""Prompt templates: class names become sentences before they meet the text tower.

CLIP was trained on captions, so "a video of a person playing guitar" embeds closer to the
matching frames than the bare label. Averaging several templates (prompt ensembling, as in
the CLIP paper) removes much of the variance of any single phrasing.
"""

from __future__ import annotations

from collections.abc import Sequence

VIDEO_TEMPLATES: tuple[str, ...] = (
    "a photo of a person {}.",
    "a video of a person {}.",
    "a person is {}.",
    "a video of {}.",
    "an example of {}.",
    "a demonstration of {}.",
    "a frame of a video of {}.",
    "a close-up video of {}.",
)


def class_prompts(display_names: Sequence[str], templates: Sequence[str] = VIDEO_TEMPLATES) -> list[list[str]]:
    """For each class, its prompts: one sentence per template."""
    return [[t.format(name) for t in templates] for name in display_names]
