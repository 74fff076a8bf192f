"""KG-CLIP web app: upload a clip, pick a label set, see what the model recognises and why.

The entry point a Hugging Face Space runs: the command-line options, loading the models, and
the server's start. The page itself is the ``kgclip_ui`` package, a thin Gradio layout over
``kgclip_core``: every computation, figure and graph view comes from the library
(``kgclip_core.explain``, ``kgclip_core.kg.render``). Run ``python app.py --help`` for the
options; on Hugging Face Spaces it starts as it stands, and on ZeroGPU hardware the model calls
run under ``spaces.GPU``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal

from fastapi import Request
from fastapi.responses import JSONResponse
from gradio.route_utils import FnIndexInferError
from starlette.middleware import Middleware

from kgclip_core.budget import REQUEST_BUDGET_S, RequestLimits
from kgclip_core.cli import add_backbone_args, check_device, configure_cache
from kgclip_core.errors import KGClipError
from kgclip_ui.common import EXAMPLES_DIR, MAX_SESSIONS
from kgclip_ui.models import load_models, start_warmup
from kgclip_ui.memory import cap_arenas, release_freed_memory
from kgclip_ui.storage import AppFolder
from kgclip_ui.upload_limit import UploadLimit
from kgclip_ui.wiring import PAGE_CSS, PAGE_HEAD, build_app

log = logging.getLogger("kgclip.app")
MAX_UPLOAD = "500mb"  # Gradio refuses a larger upload (HTTP 413) while it streams in


def _unknown_endpoint(request: Request, err: Exception) -> JSONResponse:
    """An API call naming no event of this app (an unknown api_name or fn_index): Gradio
    raises FnIndexInferError or KeyError for it, which would answer 500; it is a 404."""
    log.info("Unknown endpoint %s (%s)", request.url.path, err)
    return JSONResponse({"error": "No such endpoint; /gradio_api/info lists them."}, status_code=404)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; host and port also follow Gradio's environment variables."""
    p = argparse.ArgumentParser(description="KG-CLIP web app")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--checkpoint", default=None, metavar="DIR",
                   help="a trained checkpoint directory (config.json, model.safetensors, kg.json)")
    p.add_argument("--labels", default=None, help="label set selected at start (default: kinetics400, or the checkpoint's)")
    p.add_argument("--concurrency", type=int, default=2,
                   help="runs of each event at once: with 2, a request at its budget leaves one worker free")
    p.add_argument("--request-budget", type=float, default=REQUEST_BUDGET_S, metavar="SECONDS",
                   help="a prediction past this is ended with a message (docs/LIMITS.md)")
    p.add_argument("--max-queue", type=int, default=20, help="requests waiting before new ones are refused")
    p.add_argument("--max-sessions", type=int, default=MAX_SESSIONS,
                   help="browser sessions whose state is kept; past it the least recently used is dropped")
    add_backbone_args(p)
    return p.parse_args(argv)


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends the app as Ctrl-C does, so its folder is removed on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Start the app; its folder (uploads, playable copies, reports) is removed when it stops."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    cap_arenas()  # before the server's threads start: they share the heaps (kgclip_ui.memory)
    if args.max_sessions < 1:
        raise SystemExit(f"error: --max-sessions must be at least 1, got {args.max_sessions}.")
    try:
        check_device(args.device)  # before any weights: a missing GPU is not a download problem
        configure_cache(args)
        options = load_models(args)
    except KGClipError as err:  # a bad checkpoint or option: one line, not a traceback
        raise SystemExit(f"error: {err}") from None
    for option in options:
        option.predictor.limits = RequestLimits(budget_s=args.request_budget)
    signal.signal(signal.SIGTERM, _terminated)
    # Ctrl-C stops the app even when a script started it in the background, where SIGINT arrives
    # ignored and Python would not raise KeyboardInterrupt (the app then never stopped on it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    folder = AppFolder()
    log.info("The app's files (uploads, playable copies, reports) go to %s until it stops.", folder.root)
    try:
        folder.use_for_uploads()  # before the Blocks and the server read Gradio's folder
        demo = build_app(options, folder, args.labels, start_warmup(options, args.labels))
        demo.queue(max_size=args.max_queue, default_concurrency_limit=args.concurrency)
        folder.start_sweeping(also=release_freed_memory)
        unknown = {FnIndexInferError: _unknown_endpoint, KeyError: _unknown_endpoint}
        demo.launch(server_name=args.host, server_port=args.port, max_file_size=MAX_UPLOAD, show_error=True,
                    app_kwargs={"exception_handlers": unknown, "middleware": [
                        Middleware(UploadLimit, after_upload=folder.uploads.prune)]},
                    allowed_paths=[str(EXAMPLES_DIR)], head=PAGE_HEAD, css=PAGE_CSS,
                    state_session_capacity=args.max_sessions)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM before the server blocked: a quiet stop all the same
        pass
    finally:
        folder.remove()


if __name__ == "__main__":
    main()
