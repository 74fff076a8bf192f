"""The clips a batch covers: every video file under a folder, or the paths a list file names.

Both are bounded (``MAX_CLIPS``, ``MAX_LIST_BYTES``, docs/LIMITS.md) and read before any model
loads, so a wrong argument costs a second, not a model load. Paths come back absolute (a list
file's relative paths from the list's own folder), sorted for a folder and in list order for a
list, each once: the results file is keyed by them, and a rerun from another working directory
must find the same keys.
"""

from __future__ import annotations

import os
from pathlib import Path

from kgclip_core.errors import ConfigError
from kgclip_core.video import EXTENSIONS

LIST_SUFFIXES = (".txt", ".list", ".lst")
# One run's list, its done set and its merge are held in memory: 100,000 clips make a results
# file of about 150 MB. Split a larger collection into several lists.
MAX_CLIPS = 100_000
MAX_LIST_BYTES = 64 * 2**20  # 100,000 paths of 670 bytes


def is_batch_source(source: str) -> bool:
    """Whether ``kgclip predict``'s argument names many clips: a folder or a list file."""
    path = Path(source).expanduser()
    return path.is_dir() or path.suffix.lower() in LIST_SUFFIXES


def list_clips(source: str) -> list[str]:
    """The absolute paths of the clips ``source`` names: a folder's, a list file's, or itself (any
    other path is one clip, a batch of one); ConfigError when there are none, too many, or the
    list cannot be read."""
    path = Path(source).expanduser()
    if not is_batch_source(source):
        return [str(path.absolute())]
    clips = _folder(path) if path.is_dir() else _list_file(path)
    if not clips:
        what = f"no video file ({', '.join(EXTENSIONS)})" if path.is_dir() else "no clip path"
        raise ConfigError(f"{source!r} holds {what}; nothing to predict.")
    return clips


def _too_many(source: Path) -> ConfigError:
    return ConfigError(f"{str(source)!r} names more than {MAX_CLIPS:,} clips, the most one batch takes; "
                       "split it into several lists (each with its own --out).")


def _folder(folder: Path) -> list[str]:
    """Video files under ``folder`` and its subfolders (hidden ones skipped, links not followed)."""
    root = folder.absolute()
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(here, f) for f in files
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in EXTENSIONS]
        if len(found) > MAX_CLIPS:  # stop walking a huge tree at once
            raise _too_many(folder)
    return sorted(found)


def _list_file(path: Path) -> list[str]:
    """The paths of a list file, one per line (blank lines and ``#`` comments skipped), relative
    ones from the list's folder; a path listed twice counts once."""
    if not path.is_file():
        raise ConfigError(f"The list file {str(path)!r} does not exist; give a folder of clips or a list "
                          f"({'/'.join(LIST_SUFFIXES)}, one path a line).")
    size = path.stat().st_size
    if size > MAX_LIST_BYTES:
        raise ConfigError(f"The list {str(path)!r} is {size / 2**20:.0f} MB; at most {MAX_LIST_BYTES // 2**20} MB "
                          "is read. Split it into several lists.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"The list {str(path)!r} is not UTF-8 text; give one clip path a line.") from None
    base = path.absolute().parent
    clips: dict[str, None] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            clips[str(base / Path(line).expanduser())] = None  # an absolute line stays as it is
            if len(clips) > MAX_CLIPS:
                raise _too_many(path)
    return list(clips)
