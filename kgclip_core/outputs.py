"""Files a command is about to write, checked before any work: never over a user's file.

A command refuses, with one ConfigError, an output path that already exists (a file it did not
create, or its own input), whose name the folder cannot hold, or whose folder cannot be written,
so nothing is replaced and no model work is wasted on a write that will fail at the end.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from kgclip_core.errors import ConfigError


def check_new_files(option: str, paths: Iterable[Path], inputs: Iterable[str | Path] = (),
                    extra_name_bytes: int = 0) -> None:
    """Refuse (one ConfigError naming ``option``) unless every path in ``paths`` is new: not an
    input, not an existing file or folder, a name the folder can hold (with ``extra_name_bytes``
    more for a temporary name written beside it), in one existing folder this process can write."""
    paths = list(paths)
    given = {Path(p).expanduser().resolve() for p in inputs}
    for path in paths:
        if path.expanduser().resolve() in given:
            raise ConfigError(f"{option} would write {str(path)!r}, which is an input of this command; "
                              "choose another path.")
        if path.exists() or path.is_symlink():
            what = "a folder" if path.is_dir() else "an existing file"
            raise ConfigError(f"{option} would write {str(path)!r}, which is {what}; nothing is ever written over "
                              "it: remove it or choose another path.")
    for folder in {path.parent for path in paths}:
        check_writable_folder(option, folder)
        _check_name_lengths(option, [p for p in paths if p.parent == folder], folder, extra_name_bytes)


def check_new_folder(option: str, folder: Path) -> None:
    """Refuse a folder that exists and is not empty (or is a file): a command that fills a new
    folder with files of fixed names would replace a user's files of the same names."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        what = "a file" if not folder.is_dir() else "a folder that already holds files"
        raise ConfigError(f"{option}: {str(folder)!r} is {what}; nothing is ever written over a user's files: "
                          "give a new or empty folder.")


def check_writable_folder(option: str, folder: Path) -> None:
    """Refuse a folder that does not exist or where no file can be created. By creating (and at once
    deleting) a probe file, because permission bits say nothing for root nor for /proc."""
    if not folder.is_dir():
        raise ConfigError(f"{option}: folder {str(folder)!r} does not exist; create it first.")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".kgclip-probe-")
    except OSError as err:
        raise ConfigError(f"{option}: cannot write in folder {str(folder)!r} ({err.strerror or err}).") from None
    os.close(fd)
    os.unlink(probe)


def _check_name_lengths(option: str, paths: list[Path], folder: Path, extra: int) -> None:
    """Refuse a name longer, in bytes, than the folder's file system holds (255 on most)."""
    limit = os.pathconf(folder, "PC_NAME_MAX")
    for path in paths:
        size = len(os.fsencode(path.name)) + extra
        if size > limit:
            raise ConfigError(f"{option}: the file name {path.name[:40]!r}... is too long for its folder ({size} bytes, "
                              f"counting the temporary name written while it is made; at most {limit}).")
