"""Label sets: the built-in class lists and custom labels typed by a user or read from a file.

Built-in lists live beside this module as ``<name>.txt`` (one class per line, exactly the
public class lists). Class names are kept as published (``ApplyEyeMakeup``, ``climb stairs``)
because datasets and checkpoints refer to them; :func:`display_name` gives the human-readable
form used in prompts and the UI.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kgclip_core.errors import LabelError

LABELS_DIR = Path(__file__).parent
MAX_LABEL_CHARS = 200
MAX_LABELS = 2000

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@dataclass(frozen=True)
class LabelSet:
    """An ordered set of class names; index i is class i of the model's output."""

    name: str
    classes: tuple[str, ...]
    display_names: tuple[str, ...]
    builtin: bool

    def __len__(self) -> int:
        return len(self.classes)

    def index(self, label: str) -> int:
        """Index of a class given its class name or its display name."""
        for names in (self.classes, self.display_names):
            if label in names:
                return names.index(label)
        raise LabelError(f"{label!r} is not a class of label set {self.name!r}.")


def display_name(raw: str) -> str:
    """Human-readable form of a class name: ``ApplyEyeMakeup`` -> ``Apply Eye Makeup``."""
    text = raw.replace("_", " ")
    if " " not in text.strip():
        text = _CAMEL.sub(" ", text)
    return " ".join(text.split())


def builtin_label_sets() -> list[str]:
    """Names of the label sets shipped with the package."""
    return sorted(p.stem for p in LABELS_DIR.glob("*.txt"))


def custom_label_set(labels: Sequence[str], name: str = "custom") -> LabelSet:
    """Validate labels typed by a user: non-empty, unique, of reasonable length."""
    cleaned = [" ".join(str(label).split()) for label in labels]
    cleaned = [label for label in cleaned if label]
    if not cleaned:
        raise LabelError("The label list is empty: give at least one label (comma or newline separated).")
    if len(cleaned) > MAX_LABELS:
        raise LabelError(f"Too many labels ({len(cleaned)}); at most {MAX_LABELS} are supported.")
    too_long = [label for label in cleaned if len(label) > MAX_LABEL_CHARS]
    if too_long:
        raise LabelError(f"A label is longer than {MAX_LABEL_CHARS} characters: {too_long[0][:40]!r}...")
    seen: set[str] = set()
    for label in cleaned:
        if not any(ch.isalnum() for ch in label):
            raise LabelError(f"Label {label!r} has no letter or digit.")
        if label.casefold() in seen:
            raise LabelError(f"Duplicated label {label!r}: each label must appear once.")
        seen.add(label.casefold())
    return LabelSet(name, tuple(cleaned), tuple(display_name(label) for label in cleaned), builtin=False)


def label_set_of(classes: Sequence[str], name: str = "custom") -> LabelSet:
    """The built-in label set with exactly these classes, else a custom set called ``name``.

    Checkpoints store their classes, not the set's name; this gives them their name back.
    """
    for builtin in builtin_label_sets():
        label_set = load_label_set(builtin)
        if label_set.classes == tuple(classes):
            return label_set
    return custom_label_set(classes, name=name)


def parse_labels(text: str) -> LabelSet:
    """Custom labels from free text: one per line, or comma-separated on one line."""
    parts = text.splitlines() if "\n" in text.strip() else text.split(",")
    return custom_label_set(parts)


def load_label_set(spec: str | Sequence[str]) -> LabelSet:
    """A label set from a built-in name, a path to a text file (one label per line), or a list."""
    if not isinstance(spec, str):
        return custom_label_set(list(spec))
    name = spec.strip()
    if name in builtin_label_sets():
        classes = (LABELS_DIR / f"{name}.txt").read_text(encoding="utf-8").splitlines()
        return LabelSet(name, tuple(classes), tuple(display_name(c) for c in classes), builtin=True)
    path = Path(name).expanduser()
    if path.suffix in {".txt", ".csv"} or path.is_file():
        if not path.is_file():
            raise LabelError(f"Label file {str(path)!r} does not exist.")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise LabelError(f"Label file {str(path)!r} is not UTF-8 text.") from err
        return custom_label_set(text.splitlines(), name=path.stem)
    known = ", ".join(builtin_label_sets())
    raise LabelError(f"Unknown label set {name!r}. Use one of: {known}; a path to a .txt file; or a list of labels.")
