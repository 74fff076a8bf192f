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

from fastapi import Request
from fastapi.responses import JSONResponse
from gradio.route_utils import FnIndexInferError

from kgclip_core.budget import REQUEST_BUDGET_S, RequestLimits
from kgclip_core.cli import add_backbone_args, configure_cache
from kgclip_core.errors import KGClipError
from kgclip_ui.common import EXAMPLES_DIR
from kgclip_ui.models import load_models, start_warmup
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
    add_backbone_args(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Start the app."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        configure_cache(args)
        options = load_models(args)
    except KGClipError as err:  # a bad checkpoint or option: one line, not a traceback
        raise SystemExit(f"error: {err}") from None
    for option in options:
        option.predictor.limits = RequestLimits(budget_s=args.request_budget)
    demo = build_app(options, args.labels, start_warmup(options, args.labels))
    demo.queue(max_size=args.max_queue, default_concurrency_limit=args.concurrency)
    unknown = {FnIndexInferError: _unknown_endpoint, KeyError: _unknown_endpoint}
    demo.launch(server_name=args.host, server_port=args.port, max_file_size=MAX_UPLOAD, show_error=True,
                app_kwargs={"exception_handlers": unknown}, allowed_paths=[str(EXAMPLES_DIR)], head=PAGE_HEAD,
                css=PAGE_CSS)


if __name__ == "__main__":
    main()
