"""What one request may cost: a time budget and a cap on the text a custom label set embeds.

A server shares its CPU between everyone, so no single request may hold it for long. Two
bounds, both documented in docs/LIMITS.md:

- **Custom-set cost**, checked before any work: embedding a label set costs about one pass
  of the text tower per prompt token, so a typed label set is refused up front when its
  prompts (every label in every template) come to more than ``MAX_CUSTOM_PROMPT_TOKENS``,
  half Kinetics-400's cost. 2,000 labels of 190 characters come to 40 to 60 times that.
- **Time budget**, checked while working: a :class:`Deadline` is checked between batches of
  the text tower (the only step whose length grows with what a user typed) and, while a child
  process decodes the clip (``kgclip_core.isolated``), every few hundredths of a second; a
  request past it ends with :class:`BudgetError` (the decode killed), freeing its worker.

The same checks end a request whose caller cancelled it (a :class:`CancelToken`, set by the app
when a browser's new upload replaces the clip): :class:`Cancelled` instead of the budget's error.

The command line runs on the user's own machine and applies neither by default.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import open_clip

from kgclip_core.errors import BudgetError, Cancelled
from kgclip_core.labels import LabelSet, load_label_set
from kgclip_core.prompts import VIDEO_TEMPLATES

REQUEST_BUDGET_S = 120.0  # one prediction in the app, from the click to the answer
# Half Kinetics-400's prompts (30,752 tokens): ~160 labels of three words. At the cap, ViT-B/32
# on one thread of our busy 2-core CPU parsed and embedded a typed set in 111 s, inside the
# budget; at Kinetics-400's cost it took 180 s (docs/LIMITS.md).
MAX_CUSTOM_PROMPT_TOKENS = 16_000
CONTEXT_LENGTH = 77  # CLIP's text context: longer prompts are cut there, so cost no more


@dataclass(frozen=True)
class RequestLimits:
    """The bounds a Predictor applies to every prediction (the app sets them; None: unbounded).

    ``budget_s``: seconds one prediction may take; ``max_custom_prompt_tokens``: the cost cap
    of a typed label set; ``isolate_decoding``: decode the clip in a child process that is
    killed when the request is cancelled or over budget (``kgclip_core.isolated``; about 0.2 s
    a request), so that neither a cancel nor the budget leaves a decode running.
    """

    budget_s: float | None = REQUEST_BUDGET_S
    max_custom_prompt_tokens: int | None = MAX_CUSTOM_PROMPT_TOKENS
    isolate_decoding: bool = True

    def deadline(self, cancel: CancelToken | None = None) -> Deadline | None:
        """A deadline starting now that also ends the work once ``cancel`` is set; None when
        there is neither a budget nor a token."""
        if self.budget_s is None and cancel is None:
            return None
        return Deadline.after(math.inf if self.budget_s is None else self.budget_s, cancel)

    def check_labels(self, label_set: LabelSet) -> None:
        """Refuse a label set over the cost cap (see :func:`check_custom_cost`)."""
        if self.max_custom_prompt_tokens is not None:
            check_custom_cost(label_set, self.max_custom_prompt_tokens)


class CancelToken:
    """Set by whoever started a request to end its work early; checked with the deadline.

    A copy in another process (arguments pickled into a ZeroGPU worker) cannot be reached
    from here, so it arrives unset and only that worker's own time limit bounds it there.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def __reduce__(self):
        return CancelToken, ()


@dataclass(frozen=True)
class Deadline:
    """A point in time (``time.monotonic``, the same in every process of the machine) after
    which a request gives up; picklable, so it crosses into a ZeroGPU worker."""

    at: float
    seconds: float
    cancel: CancelToken | None = field(default=None, compare=False)

    @classmethod
    def after(cls, seconds: float, cancel: CancelToken | None = None) -> Deadline:
        """The deadline ``seconds`` from now (``math.inf``: none), also ended by ``cancel``."""
        return cls(time.monotonic() + seconds, seconds, cancel)

    def remaining(self) -> float:
        """Seconds left (negative once past)."""
        return self.at - time.monotonic()

    def check(self, doing: str) -> None:
        """Raise :class:`Cancelled` once the token is set, :class:`BudgetError` once the
        deadline has passed; ``doing`` names the step."""
        if self.cancel is not None and self.cancel.cancelled:
            raise Cancelled(f"The request was cancelled while {doing}.")
        if self.remaining() < 0:
            raise BudgetError(
                f"This request ran out of its {self.seconds:.0f} s budget while {doing}. The server is "
                "busy or the label set is large: try again later, or use fewer or shorter labels."
            )


@lru_cache(maxsize=1)
def _template_tokens() -> tuple[int, ...]:
    """Tokens each prompt template adds to a label (start and end tokens included once)."""
    ids = open_clip.tokenize([t.format("") for t in VIDEO_TEMPLATES])
    return tuple(int(n) for n in ids.argmax(dim=-1) + 1)


def prompt_tokens(labels: Sequence[str]) -> int:
    """Text tokens of every prompt of ``labels`` (each label in every template), as the text
    tower will see them: CLIP's tokenizer, each prompt cut at the 77-token context."""
    if not labels:
        return 0
    label_ids = open_clip.tokenize(list(labels))
    words = (label_ids.argmax(dim=-1) - 1).tolist()  # without the start and end tokens
    return sum(min(CONTEXT_LENGTH, t + w) for t in _template_tokens() for w in words)


@lru_cache(maxsize=1)
def _kinetics_cost() -> int:
    """Kinetics-400's prompt tokens: the yardstick a refusal quotes."""
    return prompt_tokens(load_label_set("kinetics400").display_names)


def check_custom_cost(label_set: LabelSet, max_tokens: int = MAX_CUSTOM_PROMPT_TOKENS) -> None:
    """Refuse a typed label set whose prompts exceed ``max_tokens``; built-in sets always pass
    (they are embedded once, at start, and kept)."""
    if label_set.builtin:
        return
    cost = prompt_tokens(label_set.display_names)
    if cost <= max_tokens:
        return
    fits = max(1, int(len(label_set) * max_tokens / cost))
    raise BudgetError(
        f"This label set is too large to embed in one request: its {len(label_set)} labels make "
        f"prompts of {cost:,} text tokens, and at most {max_tokens:,} are allowed (Kinetics-400's 400 "
        f"labels make {_kinetics_cost():,}). Use fewer or shorter labels (about {fits} of this length fit), "
        "or pick a built-in label set."
    )
