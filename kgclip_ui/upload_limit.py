"""A per-client cap on uploads: Gradio's upload route takes at most ``UPLOADS_PER_MINUTE`` files
and ``UPLOAD_MB_PER_MINUTE`` megabytes (as the request declares them) from one client in any
minute; past either, it answers HTTP 429 before reading the body. After each upload it accepts,
it runs ``after_upload`` (the app: the uploads folder brought under its caps, so the caps hold
between the periodic sweeps and not only at them).

Uploads that are never predicted cost disk and nothing else; the app's folder caps
(``kgclip_ui.storage``) bound the disk, and this bound keeps one client from filling those caps
with its files and pushing everyone else's out. A client is its network address; behind a proxy
(the peer is a loopback or private address, as on Hugging Face Spaces) it is the first address
of ``X-Forwarded-For``, which that proxy sets.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

UPLOADS_PER_MINUTE = 120  # a person drops a clip every few seconds at most
UPLOAD_MB_PER_MINUTE = 2048  # four uploads at the 500 MB cap (app.py MAX_UPLOAD)
WINDOW_S = 60.0
MAX_CLIENTS = 10_000  # clients remembered at once; the least recently seen go first


class UploadLimit:
    """ASGI middleware applying the per-client upload cap to ``/gradio_api/upload``, then
    ``after_upload`` (in a worker thread: it lists a folder) once an accepted upload is answered."""

    def __init__(self, app: ASGIApp, per_minute: int = UPLOADS_PER_MINUTE, mb_per_minute: float = UPLOAD_MB_PER_MINUTE,
                 after_upload: Callable[[], object] | None = None) -> None:
        self.app = app
        self.per_minute, self.bytes_per_minute = per_minute, int(mb_per_minute * 2**20)
        self.after_upload = after_upload
        self._seen: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/").endswith(
                "/gradio_api/upload"):
            refused = self.refusal(client_of(scope), _declared_bytes(scope), time.monotonic())
            if refused:
                await JSONResponse({"error": refused}, status_code=429)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            if self.after_upload is not None:
                await run_in_threadpool(self.after_upload)
            return
        await self.app(scope, receive, send)

    def refusal(self, client: str, size: int, now: float) -> str | None:
        """Count an upload of ``size`` bytes by ``client`` at ``now``; the message when it is over the cap."""
        with self._lock:
            seen = self._seen.pop(client, deque())
            while seen and seen[0][0] <= now - WINDOW_S:
                seen.popleft()
            self._seen[client] = seen  # re-inserted: the dict runs from least to most recently seen
            if len(self._seen) > MAX_CLIENTS:
                self._seen.pop(next(iter(self._seen)))
            if len(seen) >= self.per_minute or sum(s for _, s in seen) + size > self.bytes_per_minute:
                return (f"Too many uploads: at most {self.per_minute} files and {self.bytes_per_minute // 2**20} MB "
                        "a minute from one client. Wait a minute and try again.")
            seen.append((now, size))
            return None


def client_of(scope: Scope) -> str:
    """The client's address: the peer, or the first X-Forwarded-For address behind a local proxy."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    try:
        local = ipaddress.ip_address(peer).is_private  # loopback addresses are private too
    except ValueError:
        local = False
    if local:
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for" and value.strip():
                return value.decode("latin-1").split(",")[0].strip()
    return peer


def _declared_bytes(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length" and value.isdigit():
            return int(value)
    return 0
