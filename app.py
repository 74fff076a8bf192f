"""KG-CLIP web app: upload a clip, pick a label set, see what the model recognises and why.

A thin Gradio layout over ``kgclip_core``: every computation and figure comes from the library.
Run ``python app.py --help`` for the options; on Hugging Face Spaces it starts as it stands.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import gradio as gr

from kgclip_core.cli import add_backbone_args, backbone_config
from kgclip_core.errors import KGClipError, WeightsError
from kgclip_core.labels import builtin_label_sets, parse_labels
from kgclip_core.predictor import RANDOM_WEIGHTS_WARNING, Predictor, PredictorConfig
from kgclip_core.viz import frame_gallery, topk_bar_chart

log = logging.getLogger("kgclip.app")
ASSETS = Path(__file__).parent / "assets"
CUSTOM = "custom (type below)"


def load_predictor(args: argparse.Namespace) -> tuple[Predictor, str | None]:
    """The app's model, and a warning to show when it could only start on random weights."""
    cfg = PredictorConfig(backbone=backbone_config(args), num_frames=args.frames)
    try:
        return Predictor.from_config(cfg), None
    except WeightsError as err:
        # The UI is still useful to explore offline, but never silently: the banner says so.
        log.warning("%s\nStarting the app on random weights.", err)
        cfg.backbone.pretrained, cfg.backbone.allow_random = None, True
        return Predictor.from_config(cfg), f"{RANDOM_WEIGHTS_WARNING}\n\n```\n{err}\n```"


def build_app(predictor: Predictor, warning: str | None = None) -> gr.Blocks:
    """Lay out the UI around ``predictor``."""

    def predict(video: str | None, label_set: str, custom_labels: str, top_k: int,
                progress: gr.Progress = gr.Progress()):
        if not video:
            raise gr.Error("Upload a video clip or pick an example first.")
        try:
            labels = parse_labels(custom_labels) if label_set == CUSTOM else label_set
            progress(0.1, desc="Decoding and encoding the clip")
            pred = predictor.predict(video, labels=labels, top_k=int(top_k))
        except KGClipError as err:
            raise gr.Error(str(err), print_exception=False) from err
        return topk_bar_chart(pred), frame_gallery(pred), pred.to_dict()

    examples = sorted(str(p) for p in ASSETS.glob("examples/*.mp4"))
    with gr.Blocks(title="KG-CLIP: explainable fine-grained action recognition") as demo:
        gr.Markdown("# KG-CLIP\nUpload a short clip: the model names the action and shows the frames it looked at.")
        gr.Markdown(f"**Model:** {predictor.model_name}")
        if warning or predictor.backbone.random_weights:
            gr.Markdown(f"## ⚠️ Random weights\n{warning or RANDOM_WEIGHTS_WARNING}", elem_id="random-weights-warning")
        with gr.Row():
            with gr.Column(scale=1):
                video = gr.Video(label="Clip", sources=["upload"])
                label_set = gr.Dropdown([*builtin_label_sets(), CUSTOM], value="kinetics400", label="Label set")
                custom = gr.Textbox(label="Custom labels (comma or newline separated)", lines=3,
                                    placeholder="playing guitar, riding a horse, brushing teeth")
                top_k = gr.Slider(1, 10, value=5, step=1, label="Top-k")
                run = gr.Button("Recognise", variant="primary")
                if examples:
                    gr.Examples(examples, inputs=[video], label="Example clips")
            with gr.Column(scale=2):
                chart = gr.Plot(label="Predicted actions")
                gallery = gr.Gallery(label="Sampled frames", columns=4, height="auto")
                details = gr.JSON(label="Details")
        run.click(predict, [video, label_set, custom, top_k], [chart, gallery, details], api_name="predict")
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; host and port also follow Gradio's environment variables."""
    p = argparse.ArgumentParser(description="KG-CLIP web app")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=1, help="predictions run at once")
    p.add_argument("--max-queue", type=int, default=20, help="requests waiting before new ones are refused")
    add_backbone_args(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Start the app."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    predictor, warning = load_predictor(args)
    demo = build_app(predictor, warning)
    demo.queue(max_size=args.max_queue, default_concurrency_limit=args.concurrency)
    demo.launch(server_name=args.host, server_port=args.port, max_file_size="500mb", show_error=True)


if __name__ == "__main__":
    main()
