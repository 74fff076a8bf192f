"""Result rows as JSON lines, the files every experiment's run writes and its report reads.

A run appends one row per finished measurement (so an interrupted run keeps what it did and
resumes after it); a report reads them all back. A file not written yet holds no rows.
"""

from __future__ import annotations

import json
from pathlib import Path


def read(path: Path) -> list[dict]:
    """The rows of ``path`` in the order they were written; none when it does not exist."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


def append(path: Path, row: dict) -> None:
    """Add ``row`` to ``path`` (created when absent); the file is closed, so the row is on disk."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
