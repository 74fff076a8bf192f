"""A safetensors file's header, read before any tensor: the names, shapes and metadata it declares.

``safetensors.safe_open`` maps the whole file into memory, which fails (or costs) on a file that
declares a huge tensor; reading the 8-byte length and the JSON header by hand lets a loader refuse
such a file from what it declares, without allocating anything.
"""

from __future__ import annotations

import json
from pathlib import Path

MAX_HEADER_BYTES = 100 << 20  # safetensors' own cap on a header


def read_header(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """(tensor name -> shape, metadata) declared by the safetensors file at ``path``; ValueError
    (or OSError) for a file that is not one."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if size > min(MAX_HEADER_BYTES, Path(path).stat().st_size):
            raise ValueError(f"a header of {size} bytes")
        try:
            header = json.loads(f.read(size))
            shapes = {k: tuple(int(n) for n in v["shape"]) for k, v in header.items() if k != "__metadata__"}
            metadata = header.get("__metadata__") or {}
        except (TypeError, KeyError, AttributeError, RecursionError) as err:
            raise ValueError(f"an unreadable header ({err})") from None
    if not isinstance(metadata, dict):
        raise ValueError("an unreadable header (its metadata is not a mapping)")
    return shapes, metadata
