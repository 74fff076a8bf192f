"""Building a model whose weights are loaded next, without initialising them first.

open_clip builds every model with random weights and only then loads a checkpoint over
them: for ViT-B-32 the random initialisation is about 2.5 s of a cold start on 2 CPU cores
(benchmarks/bench_app.py), all of it overwritten. Inside :func:`init_skipped` the
``torch.nn.init`` functions leave tensors as they are, in the calling thread only (a model
built meanwhile in another thread initialises as usual), the way Hugging Face transformers
builds models it loads. Use it only around code that then loads *every* weight strictly:
a skipped tensor holds whatever memory it was given.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from torch.nn import init
from torch.nn.modules import activation, transformer

# Every torch.nn.init function that writes a tensor in place. Most modules' reset_parameters
# and open_clip's init_parameters call them as ``init.NAME``; MultiheadAttention (every block
# of an open_clip ViT: 0.3 s of ViT-B-32's cold start) and nn.Transformer imported theirs by
# name, so their modules' bindings are replaced too.
_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
                   "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
                   "orthogonal_", "sparse_")
_HOLDERS = (init, activation, transformer)
_state = threading.local()
_lock = threading.Lock()
_users = 0
_originals: dict[tuple[object, str], Callable] = {}


def skipping() -> bool:
    """True inside :func:`init_skipped` in this thread: the model being built gets every weight
    loaded next, so it is not a randomly initialised one."""
    return getattr(_state, "depth", 0) > 0


def _skippable(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def maybe_init(tensor, *args, **kwargs):
        return tensor if skipping() else fn(tensor, *args, **kwargs)

    return maybe_init


@contextmanager
def init_skipped() -> Iterator[None]:
    """Skip ``torch.nn.init`` in this thread for the duration (nestable, thread-safe)."""
    global _users
    with _lock:
        if _users == 0:
            for holder in _HOLDERS:
                for name in _INIT_FUNCTIONS:
                    if getattr(holder, name, None) is getattr(init, name):
                        _originals[holder, name] = getattr(holder, name)
            for (holder, name), fn in _originals.items():
                setattr(holder, name, _skippable(fn))
        _users += 1
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
        with _lock:
            _users -= 1
            if _users == 0:
                for (holder, name), fn in _originals.items():
                    setattr(holder, name, fn)
                _originals.clear()
