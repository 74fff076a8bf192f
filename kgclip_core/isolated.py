"""A decode run in a child process that can be ended: cancelled or over budget, it stops at once.

A thread cannot be stopped from outside, and a decoder's C code (decord's batch read, FFmpeg
painting a GIF's canvas) looks at no flag; a process can be killed. :func:`run_isolated` runs
one call in a fresh Python process, waits for its answer while calling ``check`` every
``POLL_S`` seconds, and, as soon as ``check`` raises (the request was cancelled, or its budget
ran out), kills the child and reaps it before passing the error on: the call's CPU and memory
are given back before the caller hears of it, so whoever frees a worker slot after the error
frees it only when the work has really ended. What the child decoded (frames, FFmpeg's
buffers) goes back to the system when it exits, so the server's own memory does not grow with
the files it decoded.

A new interpreter (``python -c``), not ``multiprocessing``: its spawn and forkserver children
re-run the parent's main script (the app, Gradio and torch) before the call, and a plain fork
of a threaded server is unsafe. Starting one and importing the decoders takes about 0.2 s.
The call travels pickled: a module-level function and picklable arguments; the child's answer,
or its exception, comes back the same way.
"""

from __future__ import annotations

import os
import pickle
import selectors
import subprocess
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from kgclip_core.errors import VideoError

POLL_S = 0.05  # how often ``check`` runs while the child works: the latest a cancel is seen
_CHILD = "from kgclip_core.isolated import serve; serve()"
T = TypeVar("T")


def run_isolated(fn: Callable[..., T], *args: Any, check: Callable[[], None] | None = None,
                 what: str = "decoding", **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` computed in a child process; its result, or its exception raised here.

    ``check()`` is called every ``POLL_S`` seconds while the child works; when it raises, the child
    is killed and reaped, then the exception propagates. A child that dies without answering (out
    of memory, a crash in a decoder) raises :class:`VideoError` naming ``what``.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        child.stdin.write(pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL))
        child.stdin.close()
        answer = _read_all(child, check)
    except BaseException:
        child.kill()
        raise
    finally:
        child.wait()  # reaped: the process is gone, not a zombie, before anyone hears of the outcome
        child.stdout.close()
    if not answer:
        raise VideoError(f"{what} stopped without an answer (its process ended with status {child.returncode}; "
                         "out of memory?). Try a smaller or shorter video.")
    ok, value = pickle.loads(answer)
    if ok:
        return value
    raise value


def _read_all(child: subprocess.Popen, check: Callable[[], None] | None) -> bytes:
    """Everything the child writes, read as it comes (a large answer fills the pipe), calling
    ``check`` between reads."""
    chunks = []
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        while True:
            if check is not None:
                check()
            if selector.select(POLL_S):
                chunk = os.read(child.stdout.fileno(), 1 << 20)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)


def serve() -> None:
    """The child's side: read one pickled call from stdin, write its pickled outcome to stdout."""
    # The answer gets stdout to itself: whatever the call prints (Python or C code) goes to stderr.
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    fn, args, kwargs = pickle.load(sys.stdin.buffer)
    try:
        outcome = (True, fn(*args, **kwargs))
    except Exception as err:  # every exception goes back to the caller, to be raised there
        outcome = (False, err)
    try:
        data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as err:  # an exception that cannot be pickled still says what it was
        data = pickle.dumps((False, RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]} ({err})")))
    with answer:
        answer.write(data)
