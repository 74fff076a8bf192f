"""Warm-up: embed label sets in the background from the moment the app starts.

Embedding a label set is the slow part of the first prediction (Kinetics-400: thousands of
prompts and units through the text tower), and the first typed label set costs loading the
spaCy parser. A :class:`Warmup` does both in a daemon thread while the server comes up and
the user picks a clip, and says in one line how far it got, for the app's status line. A request for a label set being warmed waits for it (see
:meth:`Predictor.classes`), so nothing is embedded twice; one for another label set goes
first (the warm-up pauses while it embeds).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kgclip_core.errors import KGClipError
from kgclip_core.kg.parser import load_spacy
from kgclip_core.labels import LabelSet
from kgclip_core.predictor import Predictor

log = logging.getLogger(__name__)


@dataclass
class WarmupJob:
    """One label set to embed for one model, and what happened to it."""

    predictor: Predictor
    labels: LabelSet
    done: int = 0  # texts embedded so far
    total: int = 0  # texts the label set needs (0: not known yet)
    seconds: float | None = None  # set once embedded
    error: str | None = None

    def progress(self, done: int, total: int) -> None:
        """Progress callback of :meth:`Predictor.classes`."""
        self.done, self.total = done, total


class Warmup:
    """Embeds label sets one after another in a background thread."""

    def __init__(self, jobs: list[tuple[Predictor, LabelSet]]) -> None:
        self.jobs = [WarmupJob(p, labels) for p, labels in jobs]
        self._thread = threading.Thread(target=self._run, name="kgclip-warmup", daemon=True)
        self._start = time.monotonic()  # times are counted from here, about when the app starts

    def start(self) -> Warmup:
        """Start embedding; returns self."""
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        """Wait for the warm-up to finish."""
        self._thread.join(timeout)

    @property
    def done(self) -> bool:
        """True when every label set is embedded (or failed, see :meth:`status`)."""
        return all(job.seconds is not None or job.error for job in self.jobs)

    def _run(self) -> None:
        for job in self.jobs:
            try:
                job.predictor.classes(job.labels, job.progress, background=True)
                job.seconds = time.monotonic() - self._start
                log.info("Warm-up: label set %s embedded %.1f s after start.", job.labels.name, job.seconds)
            except KGClipError as err:  # the first request embeds it and shows the error then
                job.error = str(err)
                log.warning("Warm-up of label set %s failed: %s", job.labels.name, err)
        try:  # typed label sets are parsed with spaCy, whose first load takes seconds
            load_spacy()
        except KGClipError as err:
            log.warning("Warm-up: custom label sets will not parse: %s", err)

    def status(self) -> str:
        """One markdown line: what is being embedded and how far, or that all is ready (in words:
        an emoji mark shows as a box where no emoji font is installed)."""
        for job in self.jobs:
            if job.error:
                return f"Could not prepare label set `{job.labels.name}` ({job.error})."
            if job.seconds is None:
                count = f": {job.done:,}/{job.total:,} texts embedded" if job.total else ""
                return (f"Preparing label set `{job.labels.name}` ({len(job.labels)} classes){count}, "
                        f"{time.monotonic() - self._start:.0f} s since start. You can already upload a "
                        "clip: a prediction over it waits for this, other label sets are embedded on demand.")
        distinct = list(dict.fromkeys(job.labels.name for job in self.jobs))  # one set, several models: once
        names = ", ".join(f"`{name}`" for name in distinct)
        seconds = max((job.seconds for job in self.jobs), default=0.0)
        sets = "label set" if len(distinct) == 1 else "label sets"
        return f"**Ready:** {sets} {names} prepared {seconds:.0f} s after start; others are embedded on first use."
