"""On-disk cache of text embeddings.

Embedding the prompts of a 400-class label set takes ~20 s on a 2-core CPU, and the app and
the evaluation scripts ask for the same texts again and again. Entries are keyed by a
fingerprint of the text tower's weights and the exact list of texts, so a different model,
checkpoint or text list can never be served a stale entry. Files are safetensors (no pickle).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$KGCLIP_CACHE_DIR``, else ``$XDG_CACHE_HOME/kgclip``, else ``~/.cache/kgclip``."""
    if os.environ.get("KGCLIP_CACHE_DIR"):
        return Path(os.environ["KGCLIP_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "kgclip"


def cache_key(fingerprint: str, kind: str, texts: Sequence[str]) -> str:
    """A stable key for (weights fingerprint, kind of embedding, exact text list)."""
    h = hashlib.sha256()
    for part in (fingerprint, kind, str(len(texts)), *texts):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:32]


class TextEmbeddingCache:
    """Stores dicts of tensors under a key; ``cache_dir=None`` disables caching."""

    def __init__(self, cache_dir: str | Path | None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    def get_or_compute(self, key: str, compute: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Return the cached tensors for ``key``, computing and storing them on a miss."""
        if self.cache_dir is None:
            return compute()
        path = self.cache_dir / f"{key}.safetensors"
        if path.is_file():
            try:
                return load_file(str(path))
            except Exception as err:  # a half-written or foreign file: recompute rather than fail
                log.warning("Ignoring unreadable text-embedding cache file %s (%s)", path, err)
        tensors = compute()
        self._write(path, tensors)
        return tensors

    def _write(self, path: Path, tensors: dict[str, torch.Tensor]) -> None:
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename so a concurrent reader never sees a partial file.
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp)
            os.replace(tmp, path)
        except OSError as err:  # a read-only or full disk must not break inference
            log.warning("Could not write text-embedding cache %s (%s)", path, err)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
