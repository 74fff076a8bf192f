"""The model choice's models: which the app offers (``load_models``), the banner that says
what each is, the label set it starts on, and the background warm-up of their label sets."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

from kgclip_core.cli import backbone_config
from kgclip_core.errors import WeightsError
from kgclip_core.predictor import RANDOM_WEIGHTS_WARNING, Predictor, PredictorConfig
from kgclip_core.synth.foundation import foundation_predictor
from kgclip_core.warmup import Warmup
from kgclip_ui.common import CHECKPOINT, REPO

log = logging.getLogger("kgclip.app")
CHECKPOINTS = REPO / "checkpoints"
DEMO_CHECKPOINT = CHECKPOINTS / "synthetic"
FOUNDATION_WEIGHTS = CHECKPOINTS / "foundation" / "open_clip_model.safetensors"
OFFLINE_NOTE = (
    "{reason} So the app offers the models of its synthetic world instead: they recognise "
    "procedurally drawn stick-figure actions (try the example clips), not real videos "
    "(details: docs/TESTBED.md in the repository)."
)
DEMO_BANNER = (
    "**Demo model (fine-tuned KG-CLIP)**: every KG-CLIP head, trained on the 24 stick-figure "
    "actions of the `synthetic` label set; it knows those 24 actions only."
)
FOUNDATION_BANNER = (
    "**Foundation (pretrained CLIP, training-free)**: the synthetic world's own CLIP, pretrained on "
    "captioned stick-figure clips and used without fine-tuning, as a real CLIP would be: it scores "
    "each action by its knowledge-graph description and semantic units, so it also recognises "
    "the 8 new combinations of `synthetic_novel` it never saw named."
)


@dataclass
class ModelOption:
    """One model the app can run, and the banner that says plainly what it is."""

    title: str
    predictor: Predictor
    banner: str = ""


def load_models(args: argparse.Namespace) -> list[ModelOption]:
    """The models the app offers: the one asked for or, offline, the synthetic world's models.

    Offline, the shipped demo checkpoint (fine-tuned) and foundation (training-free) are real
    trained models for the stick-figure actions and beat random weights; random weights run
    only when both are missing or when asked for, under a banner that says so.
    """
    if args.checkpoint:
        predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device)
        return [ModelOption(predictor.model_name, predictor)]
    cfg = PredictorConfig(backbone=backbone_config(args), num_frames=args.frames)
    try:
        predictor = Predictor.from_config(cfg)
        return [ModelOption(predictor.model_name, predictor)]
    except WeightsError as err:
        reason = str(err).splitlines()[0]
        log.warning("%s", err)
    options = []
    if not args.random_weights:
        note = OFFLINE_NOTE.format(reason=reason)
        if DEMO_CHECKPOINT.is_dir():
            demo = Predictor.from_checkpoint(DEMO_CHECKPOINT, device=args.device)
            options.append(ModelOption("Demo model (fine-tuned KG-CLIP)", demo, f"{note}\n\n{DEMO_BANNER}"))
        if FOUNDATION_WEIGHTS.is_file():
            foundation = foundation_predictor(FOUNDATION_WEIGHTS, device=args.device, num_frames=args.frames)
            options.append(ModelOption("Foundation (training-free)", foundation, f"{note}\n\n{FOUNDATION_BANNER}"))
    if options:
        log.info("Offline: offering %s.", ", ".join(o.title for o in options))
        return options
    # The UI is still useful to explore offline, but never silently: the banner says so.
    log.warning("Starting the app on random weights (%s).", reason)
    cfg.backbone.pretrained, cfg.backbone.allow_random = None, True
    predictor = Predictor.from_config(cfg)
    return [ModelOption(predictor.model_name, predictor, RANDOM_WEIGHTS_WARNING)]


def default_labels(option: ModelOption) -> str:
    """The label-set menu's entry a model starts on: its checkpoint's labels, else Kinetics-400."""
    return CHECKPOINT if option.predictor.default_labels else "kinetics400"


def start_warmup(options: list[ModelOption], labels: str | None = None) -> Warmup:
    """Embed each model's label set at start (``labels`` for the first) in the background."""
    jobs = [(o.predictor, o.predictor.resolve_labels(labels if i == 0 else None)) for i, o in enumerate(options)]
    return Warmup(jobs).start()
