"""A short hash of a weights file: the experiments' results record it, so that results of other
weights (a model retrained with another recipe) are never mistaken for done."""

from __future__ import annotations

import hashlib
from pathlib import Path


def digest(path: Path) -> str:
    """The first 16 hex digits of the file's sha256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
