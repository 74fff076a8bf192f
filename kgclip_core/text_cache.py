"""On-disk cache of text embeddings, bounded in size.

Embedding the prompts and units of a 400-class label set takes tens of seconds on a 2-core
CPU, and the app and the evaluation scripts ask for the same texts again and again. Entries
are keyed by a fingerprint of the text tower's weights and the exact list of texts, so a
different model, checkpoint or text list can never be served a stale entry. Files are
safetensors (no pickle). The folder is capped (``max_bytes``): writing past the cap deletes
the least recently used entries, so label sets typed into the app once cannot fill the disk.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from kgclip_core.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_MAX_MB = 512  # ~40 ViT-B label sets of Kinetics-400's size


def default_cache_dir() -> Path:
    """``$KGCLIP_CACHE_DIR``, else ``$XDG_CACHE_HOME/kgclip``, else ``~/.cache/kgclip``."""
    if os.environ.get("KGCLIP_CACHE_DIR"):
        return Path(os.environ["KGCLIP_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "kgclip"


def default_max_bytes() -> int:
    """``$KGCLIP_CACHE_MAX_MB`` megabytes, else 512 MB."""
    return max_bytes("KGCLIP_CACHE_MAX_MB", os.environ.get("KGCLIP_CACHE_MAX_MB") or str(DEFAULT_MAX_MB))


def max_bytes(setting: str, megabytes: str) -> int:
    """A cache cap given in megabytes, in bytes; anything but a finite positive number (``inf``
    and ``nan`` parse as floats) is a ConfigError naming ``setting``."""
    try:
        value = float(megabytes)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{setting} must be a positive number of megabytes, got {megabytes!r}.")
    return int(value * 2**20)


def cache_key(fingerprint: str, kind: str, texts: Sequence[str]) -> str:
    """A stable key for (weights fingerprint, kind of embedding, exact text list)."""
    h = hashlib.sha256()
    for part in (fingerprint, kind, str(len(texts)), *texts):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:32]


class TextEmbeddingCache:
    """Stores dicts of tensors under a key; ``cache_dir=None`` disables caching.

    At most ``max_bytes`` of entries are kept: each read marks an entry as used (its file's
    modification time), and a write that goes past the cap deletes the entries used least
    recently. Other processes may share the folder: every file is written whole, then renamed.
    """

    def __init__(self, cache_dir: str | Path | None, max_bytes: int | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.max_bytes = default_max_bytes() if max_bytes is None else max_bytes

    def get_or_compute(
        self, key: str, compute: Callable[[], dict[str, torch.Tensor]]
    ) -> tuple[dict[str, torch.Tensor], bool]:
        """The tensors stored under ``key`` and True, or, on a miss, ``compute()``'s (now
        stored) and False."""
        if self.cache_dir is None:
            return compute(), False
        path = self.cache_dir / f"{key}.safetensors"
        if path.is_file():
            try:
                tensors = load_file(str(path))
            except Exception as err:  # a half-written, foreign or just evicted file: recompute rather than fail
                log.warning("Ignoring unreadable text-embedding cache file %s (%s)", path, err)
            else:
                self._touch(path)
                return tensors, True
        tensors = compute()
        self._write(path, tensors)
        return tensors, False

    @staticmethod
    def _touch(path: Path) -> None:
        """Mark an entry as used now; a read-only shared folder is still read, just not reordered."""
        try:
            os.utime(path, ns=(time.time_ns(), time.time_ns()))
        except OSError as err:
            log.debug("Could not mark %s as used (%s)", path, err)

    def entries(self) -> list[tuple[Path, int]]:
        """The cached files and their sizes in bytes, least recently used first."""
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return []
        found = []
        for path in self.cache_dir.glob("*.safetensors"):
            try:
                stat = path.stat()
            except FileNotFoundError:  # evicted by another process meanwhile
                continue
            found.append((stat.st_mtime_ns, path, stat.st_size))
        return [(path, size) for _, path, size in sorted(found)]

    def _evict(self, keep: Path) -> None:
        """Delete least recently used entries until the folder fits ``max_bytes``."""
        entries = self.entries()
        total = sum(size for _, size in entries)
        for path, size in entries:
            if total <= self.max_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size
                log.info("Text-embedding cache over %d MB: evicted %s", self.max_bytes // 2**20, path.name)

    def _write(self, path: Path, tensors: dict[str, torch.Tensor]) -> None:
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        if size > self.max_bytes:
            log.warning("Not caching %s: %d MB is over the cache's cap of %d MB.", path.name, size // 2**20,
                        self.max_bytes // 2**20)
            return
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename so a concurrent reader never sees a partial file.
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp)
            os.replace(tmp, path)
            self._evict(keep=path)
        except OSError as err:  # a read-only or full disk must not break inference
            log.warning("Could not write text-embedding cache %s (%s)", path, err)
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
