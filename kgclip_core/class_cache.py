"""Embedded label sets, computed once and kept: the Predictor's class features, shared by threads.

Embedding a label set is the expensive step of a first prediction (Kinetics-400's prompts take
seconds to minutes on a CPU), and the app asks for the same few sets again and again, from
several threads: the warm-up embeds its default set in the background from the start, and
requests may ask for it meanwhile. :class:`ClassCache` keeps the last ``size`` label sets, lets a
caller wait for a set another thread is embedding (following its progress), and makes a
background caller give way to requests between text batches.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from kgclip_core.budget import Deadline

Progress = Callable[[int, int], None]  # (texts embedded, texts in all)
Entry = TypeVar("Entry")


def progress_within(deadline: Deadline | None, progress: Progress | None) -> Progress | None:
    """``progress`` that also ends the work once ``deadline`` has passed: it is called between
    text batches, the one place a long embedding can stop cleanly."""
    if deadline is None:
        return progress

    def step(done: int, total: int) -> None:
        deadline.check(f"embedding the label set ({done} of {total} texts done)")
        if progress is not None:
            progress(done, total)

    return step


class ClassCache(Generic[Entry]):
    """The last ``size`` computed entries by key, least recently used dropped first; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        # Keys being computed now, with their progress, and how many of those computations are
        # not in the background; the condition guards all three.
        self._computing: dict[Hashable, tuple[int, int]] = {}
        self._foreground = 0
        self._lock = threading.Condition()

    def get(self, key: Hashable, compute: Callable[[Progress], Entry], progress: Progress | None = None,
            background: bool = False) -> Entry:
        """The entry of ``key``, computed by ``compute(report)`` if it is not kept.

        ``progress(done, total)`` follows the computation, this caller's or the one another
        thread is running for the same key (this caller then waits for it). A ``background``
        caller gives way: between batches (each ``report`` call) it pauses while another
        caller computes an entry, so a request is not slowed by a warm-up it does not need.
        """
        with self._lock:
            while key in self._computing:
                if progress is not None:
                    progress(*self._computing[key])
                self._lock.wait(timeout=0.5)
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            self._computing[key] = (0, 0)
            self._foreground += not background

        def report(done: int, total: int) -> None:
            with self._lock:
                self._computing[key] = (done, total)
                while background and self._foreground:
                    self._lock.wait(timeout=0.5)
            if progress is not None:
                progress(done, total)

        try:
            entry = compute(report)
            with self._lock:
                self._entries[key] = entry
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        finally:
            with self._lock:
                del self._computing[key]
                self._foreground -= not background
                self._lock.notify_all()
        return entry

    def progress(self, key: Hashable) -> tuple[int, int] | None:
        """(done, total) while ``key`` is being computed, else None."""
        with self._lock:
            return self._computing.get(key)
