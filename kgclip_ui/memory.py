"""Giving the memory a long-running server has freed back to the system.

The app's requests allocate and free blocks of many sizes (decoded frames, tensors, figures,
HTML) from several worker threads. glibc's allocator keeps what is freed inside its heaps
("arenas", up to eight per core, one per thread that needed its own) for reuse, and a heap
only shrinks from its top: a small block still in use high up pins every free page below it.
Over hours the process's RSS then creeps up although Python's own allocations do not
(docs/LIMITS.md, the long soak). Two glibc calls bound that: ``mallopt(M_ARENA_MAX)`` caps the
number of heaps, and ``malloc_trim(0)`` returns the free pages inside every heap to the system
(``madvise``), not only those at its top. Elsewhere (macOS, Windows, musl) both are skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger("kgclip.app")

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2  # heaps shared by the server's threads: what the main thread and one worker use at once


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (the one with ``malloc_trim``), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def cap_arenas(arenas: int = ARENAS) -> bool:
    """Let the allocator make at most ``arenas`` heaps from now on (threads then share them, and
    fewer heaps hold fewer stranded free pages); True when the C library took it."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas))


def release_freed_memory() -> bool:
    """Return the free pages of every heap to the system; True when any was returned."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
