"""The facade the app, the CLI and the tests use: a clip and a label set in, a Prediction out.

A Predictor runs a :class:`KGClipModel`: a fine-tuned checkpoint (``from_checkpoint``) or, by
default, a pretrained CLIP in training-free mode (prompt similarity plus the class's
best-matching semantic units from the knowledge graph). :meth:`Predictor.predict` reads as the
pipeline, each step a call into its own module: read the clip (``video``), the label set's class
features (``class_cache``, ``class_inputs``), score (``model``), then explain: the evidence
(``evidence``), the model's intermediate results (``readout``) and the maps (``heatmaps``).
``Prediction`` (``prediction``) is a plain dataclass holding everything the UI shows; no Gradio
types here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch

from kgclip_core import heatmaps
from kgclip_core.backbone import BackboneConfig, load_backbone, resolve_device
from kgclip_core.budget import CancelToken, Deadline, RequestLimits
from kgclip_core.class_cache import ClassCache, progress_within
from kgclip_core.class_inputs import class_inputs
from kgclip_core.errors import ConfigError, LabelError
from kgclip_core.contrast import contrast, rival_units
from kgclip_core.evidence import ConceptMarks, concepts_of, evidence_items, fit_score, mark_concepts
from kgclip_core.isolated import run_isolated
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.labels import LabelSet, label_set_of, load_label_set
from kgclip_core.model import checkpoint
from kgclip_core.model.concept_detector import FILE_NAME as DETECTOR_FILE
from kgclip_core.model.concept_detector import ConceptDetector, feature_width
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import ClassFeatures, ClassProgress, KGClipModel, ScoreOutput, VideoFeatures
from kgclip_core.prediction import Contrast, Prediction
from kgclip_core.readout import concept_maps, grid_maps, read_out
from kgclip_core.video import Clip, read_clip

# Prediction is part of the facade: callers import it from here with the Predictor.
__all__ = ["RANDOM_WEIGHTS_WARNING", "Prediction", "Predictor", "PredictorConfig"]

RANDOM_WEIGHTS_WARNING = (
    "This model runs on RANDOM weights (no pretrained weights could be loaded): predictions are "
    "meaningless. Connect to the internet once, pass a local weights file, or load a trained checkpoint."
)
UNKNOWN_LABELS = ("This model was fine-tuned on {n} actions, and {labels} are not among them: it scores them by "
                  "their text alone, so read their scores and explanations with care.")
_CLASS_CACHE_SIZE = 8
SHOWN_CONCEPTS = 12  # the clip's concepts a prediction lists, best first (what a "not sure" names)
DEFAULT_TRIPLET_SHORTLIST = 16


@dataclass
class PredictorConfig:
    """How the Predictor samples clips, which backbone it loads and which heads it runs.

    ``model`` None means training-free scoring on the pretrained backbone.
    ``triplet_shortlist`` replaces the model config's at inference (None keeps it): the
    triplet term then scores only the best classes by the other terms, which costs a fraction
    of scoring every class and kept the demo checkpoint's top-1 on every fresh clip tried
    (docs/MODEL.md); 0 scores every class. ``heatmap_method`` makes the selected units' maps
    (one of ``kgclip_core.heatmaps.HEATMAP_METHODS``; the gradient methods cost
    backward passes on every prediction, docs/EXPLAIN.md). ``concept_detector``: a concept
    detector file (``kgclip_core.model.concept_detector``) that marks which concepts the clip
    shows with calibrated probabilities; without one a relative rule marks them.
    """

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    model: ModelConfig | None = None
    num_frames: int = 8
    short_side: int = 256
    top_k: int = 5
    triplet_shortlist: int | None = DEFAULT_TRIPLET_SHORTLIST
    heatmap_method: str = heatmaps.DEFAULT_HEATMAP_METHOD
    concept_detector: str | None = None


class Predictor:
    """Action recognition of a clip over a label set, with the model's own explanations."""

    def __init__(self, model: KGClipModel, cfg: PredictorConfig, kg: KnowledgeGraph | None = None,
                 labels: LabelSet | None = None) -> None:
        if cfg.triplet_shortlist is not None and model.cfg.triplet_shortlist != cfg.triplet_shortlist:
            model.cfg = replace(model.cfg, triplet_shortlist=cfg.triplet_shortlist)
        self.model = model.eval()
        self.cfg = cfg
        self.default_labels = labels
        self.limits: RequestLimits | None = None  # a server's bounds on each prediction (kgclip_core.budget)
        self._checkpoint_kg = kg
        self._classes: ClassCache[tuple[KnowledgeGraph, ClassFeatures]] = ClassCache(_CLASS_CACHE_SIZE)
        self.detector = ConceptDetector.load(cfg.concept_detector) if cfg.concept_detector else None
        if self.detector is not None and self.detector.mean.shape[0] != feature_width(model.backbone.embed_dim):
            raise ConfigError(f"The concept detector {Path(cfg.concept_detector).name} was made for another model "
                              f"(features of {self.detector.mean.shape[0]}, this one's have "
                              f"{feature_width(model.backbone.embed_dim)}).")

    @classmethod
    def from_config(cls, cfg: PredictorConfig, labels: str | Sequence[str] | None = None) -> Predictor:
        """Load the pretrained backbone (raises WeightsError with what to do) and add the heads;
        ``labels`` is the label set used when a prediction names none (default Kinetics-400)."""
        backbone = load_backbone(cfg.backbone)
        model_cfg = cfg.model or ModelConfig.training_free_preset(
            backbone=cfg.backbone.model_name, pretrained=cfg.backbone.pretrained, num_frames=cfg.num_frames)
        return cls(KGClipModel(model_cfg, backbone), cfg, labels=load_label_set(labels) if labels else None)

    @classmethod
    def from_checkpoint(cls, directory: str | Path, device: str = "auto", **overrides) -> Predictor:
        """A fine-tuned model from a checkpoint directory (config.json, model.safetensors, kg.json).

        The heatmap method is the checkpoint's own (``config.json``'s ``heatmap_method``, the one
        measured to point best with its weights) unless ``overrides`` name one; so is its concept
        detector (``concepts.safetensors`` beside the weights), when it has one."""
        ckpt = checkpoint.load(directory, device=str(resolve_device(device)))
        if ckpt.heatmap_method is not None:
            overrides.setdefault("heatmap_method", heatmaps.check_method(ckpt.heatmap_method))
        if (Path(directory) / DETECTOR_FILE).is_file():
            overrides.setdefault("concept_detector", str(Path(directory) / DETECTOR_FILE))
        backbone_cfg = ckpt.model.backbone.cfg
        cfg = PredictorConfig(backbone=backbone_cfg, model=ckpt.config, num_frames=ckpt.config.num_frames, **overrides)
        kg = KnowledgeGraph.from_json(ckpt.kg) if ckpt.kg.get("nodes") else None
        labels = label_set_of(ckpt.labels, name=Path(directory).name) if ckpt.labels else None
        return cls(ckpt.model, cfg, kg=kg, labels=labels)

    @property
    def backbone(self):
        """The CLIP backbone of the model."""
        return self.model.backbone

    @property
    def model_name(self) -> str:
        """A short description of the model for people."""
        b = self.backbone.cfg
        # A local weights file is named by its file name: the server's folders are nobody's business.
        weights = "random weights" if self.backbone.random_weights else Path(b.pretrained or "checkpoint").name
        mode = "training-free" if self.model.cfg.training_free else "fine-tuned KG-CLIP"
        return f"{b.model_name} ({weights}, {mode})"

    def _graph_for(self, label_set: LabelSet) -> KnowledgeGraph:
        kg = self._checkpoint_kg
        if kg is not None and all(kg.has_action(c) for c in label_set.classes):
            return kg
        return KnowledgeGraph.for_label_set(label_set)

    def classes(self, label_set: LabelSet, progress: ClassProgress | None = None,
                background: bool = False) -> tuple[KnowledgeGraph, ClassFeatures]:
        """The label set's graph and embedded classes, computed once and kept for reuse.

        ``progress(done, total)`` follows the texts embedded. Safe to call from several
        threads (the app warms its default label set in the background): a caller asking for
        a label set another thread is embedding waits for it, following its progress. A
        ``background`` caller gives way: between batches it pauses while another caller
        embeds a label set, so a request is not slowed by a warm-up it does not need.
        """
        def embed(report: ClassProgress) -> tuple[KnowledgeGraph, ClassFeatures]:
            kg = self._graph_for(label_set)
            inputs = class_inputs(label_set, kg, self.model.cfg.class_text)
            return kg, self.model.encode_classes(inputs, progress=report)

        return self._classes.get((label_set.name, label_set.classes), embed, progress, background)

    def embedding_progress(self, label_set: LabelSet) -> tuple[int, int] | None:
        """(texts embedded, texts in all) while ``label_set`` is being embedded, else None."""
        return self._classes.progress((label_set.name, label_set.classes))

    def resolve_labels(self, labels: str | Sequence[str] | LabelSet | None) -> LabelSet:
        """A LabelSet from what the caller gave, or the checkpoint's own labels."""
        if isinstance(labels, LabelSet):
            return labels
        if labels is None:
            return self.default_labels or load_label_set("kinetics400")
        return load_label_set(labels)

    def start_request(self, labels: str | Sequence[str] | LabelSet | None, top_k: int | None,
                      cancel: CancelToken | None = None) -> tuple[LabelSet, int, Deadline | None]:
        """A request's label set, its top-k and its deadline (also ended by ``cancel``), refused
        (LabelError, BudgetError) before any work when the top-k is not a whole number of at
        least 1 or ``self.limits`` refuses the label set."""
        label_set = self.resolve_labels(labels)
        top_k = self.cfg.top_k if top_k is None else top_k  # 0 is an error, not "the default"
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise LabelError(f"top_k must be a whole number of at least 1, got {top_k!r}.")
        limits = self.limits or RequestLimits(budget_s=None, max_custom_prompt_tokens=None)
        limits.check_labels(label_set)
        return label_set, top_k, limits.deadline(cancel)

    @torch.no_grad()
    def predict(self, video_path: str | Path, labels: str | Sequence[str] | LabelSet | None = None,
                top_k: int | None = None, progress: ClassProgress | None = None,
                span: tuple[float, float] | None = None, cancel: CancelToken | None = None) -> Prediction:
        """Classify one clip and explain it.

        ``labels``: a built-in set name, a label file, a list of labels or a LabelSet; None
        uses the checkpoint's label set (Kinetics-400 for a plain pretrained CLIP).
        ``progress(done, total)`` follows the texts embedded when the label set is new.
        ``span`` (start, end) in seconds classifies that stretch of the clip only (a timeline's
        window, ``kgclip_core.timeline``).
        ``self.limits`` (set by a server) refuses a typed label set over the cost cap before
        any work, and ends a prediction past its time budget with BudgetError, between two
        batches of the text tower (or while it waits for another request embedding the same
        labels); with ``limits.isolate_decoding`` the clip is decoded in a child process, killed
        as soon as the budget runs out or ``cancel`` is set (:class:`Cancelled`).
        """
        label_set, top_k, deadline = self.start_request(labels, top_k, cancel)
        # The clip before the label set: a bad file is refused before any text is embedded,
        # and while the warm-up still embeds this label set (the first request after a
        # start), the clip's encoding overlaps with it.
        clip = self._read_clip(video_path, deadline, span)
        images = self.backbone.preprocess(clip.frames[0])[None]
        method = self.cfg.heatmap_method
        with heatmaps.recorder(self.backbone, method) as recorded:
            video = self.model.encode_video(images)
        kg, classes = self.classes(label_set, progress_within(deadline, progress))
        if deadline is not None:  # a cancel or the budget also ends the run between its passes
            deadline.check("scoring the clip")
        pred, out = self._scored(clip, video, classes, kg, label_set, top_k)
        concepts = {"evidence_maps": [classes.unit_texts.index(e.text) for e in pred.evidence]}
        if pred.contrast is not None:
            concepts["rival_maps"] = rival_units(classes, pred.contrast)
        for name, maps in concept_maps(self.backbone, images[0], video, out, classes, concepts, method,
                                       recorded).items():
            setattr(pred.contrast if name == "rival_maps" else pred, name, maps)
        pred.heatmap_method = method
        return pred

    @torch.no_grad()
    def predict_batch(self, clips: Sequence[Clip], labels: str | Sequence[str] | LabelSet | None = None,
                      top_k: int | None = None) -> list[Prediction]:
        """Classify and explain clips already decoded (``video.read_clip``, one view each), their
        frames through the backbone in one batch (``kgclip_core.batch`` decodes them beside it).

        Each clip is then scored on its own, so its prediction never depends on the other clips of
        the batch (``triplet_inference="averaged"`` would mix them) and is what :meth:`predict`
        says of it, less the concept maps: most heatmap methods cost passes of their own per clip,
        and a batch writes no maps. Embed the label set beforehand (:meth:`classes`) to follow its
        progress.
        """
        label_set, top_k, _ = self.start_request(labels, top_k)
        if not clips:
            return []
        videos = self.model.encode_video(torch.stack([self.backbone.preprocess(clip.frames[0]) for clip in clips]))
        kg, classes = self.classes(label_set)
        return [self._scored(clip, videos.item(i), classes, kg, label_set, top_k)[0] for i, clip in enumerate(clips)]

    def _read_clip(self, video_path: str | Path, deadline: Deadline | None, span: tuple[float, float] | None) -> Clip:
        """The clip's sampled frames; decoded in a child process that ``deadline`` ends when the
        limits ask for it (a decoder's C code cannot be stopped inside this process)."""
        kwargs = dict(short_side=self.cfg.short_side, span=span)
        if self.limits is None or not self.limits.isolate_decoding:
            return read_clip(video_path, self.cfg.num_frames, **kwargs)
        check = None if deadline is None else partial(deadline.check, "decoding the clip")
        return run_isolated(read_clip, video_path, self.cfg.num_frames, check=check, what="Decoding the clip",
                            **kwargs)

    def _scored(self, clip: Clip, video: VideoFeatures, classes: ClassFeatures, kg: KnowledgeGraph,
                label_set: LabelSet, top_k: int) -> tuple[Prediction, ScoreOutput]:
        """One clip's encoded frames (a batch of one) scored and explained, maps aside: the
        Prediction and the scoring pass it comes from."""
        out = self.model.score(video, classes, explain=True)
        pred = self._ranked(clip, label_set, out, top_k, video.grid)
        self._explain(pred, mark_concepts(video, out, classes, self.detector), out, classes, kg, label_set)
        return pred, out

    def _explain(self, pred: Prediction, marks: ConceptMarks, out: ScoreOutput, classes: ClassFeatures,
                 kg: KnowledgeGraph, label_set: LabelSet) -> None:
        """The explanation of the top class: its concepts as the clip shows them, the contrast with
        the runner-up, how well it fits, and the model's own intermediate results."""
        top = pred.class_indices[0]
        pred.evidence = evidence_items(marks, classes, concepts_of(classes, top))
        pred.evidence_measure, pred.evidence_threshold = marks.measure, marks.threshold
        pred.concept_scores = marks.frame_scores.cpu().numpy()
        shown = marks.present.nonzero().flatten().tolist()
        pred.shown_concepts = [classes.unit_texts[u] for u in sorted(shown, key=lambda u: -float(marks.scores[u]))
                               ][:SHOWN_CONCEPTS]
        if len(label_set) > 1:
            pred.contrast = contrast(marks, classes, label_set, top, int(out.logits[0].topk(2).indices[1]))
        pred.fit, pred.unsure = self.fit(marks, classes, top)
        pred.unknown_labels = self.unknown_labels(label_set)
        if pred.unknown_labels:
            pred.warnings.append(UNKNOWN_LABELS.format(n=len(self.default_labels), labels=", ".join(
                repr(label) for label in pred.unknown_labels[:5]) + (" ..." if len(pred.unknown_labels) > 5 else "")))
        read_out(pred, out, classes, kg, label_set, self.model)

    def fit(self, marks: ConceptMarks, classes: ClassFeatures, cls: int) -> tuple[float | None, bool]:
        """How well class ``cls`` fits what the clip shows (``evidence.fit_score``), and whether
        that is too little to name it ("not sure", below the concept detector's bar)."""
        fit = fit_score(marks, classes, cls)
        below = None if self.detector is None else self.detector.unsure_below
        return fit, fit is not None and below is not None and fit < below

    def unknown_labels(self, label_set: LabelSet) -> list[str]:
        """The labels of ``label_set`` a fine-tuned model never learned (not among its checkpoint's
        classes); none for a training-free model, which knows every label through its text alone."""
        if self.model.cfg.training_free or self.default_labels is None:
            return []
        known = {n.casefold() for n in (*self.default_labels.classes, *self.default_labels.display_names)}
        return [d for c, d in zip(label_set.classes, label_set.display_names)
                if c.casefold() not in known and d.casefold() not in known]

    def contrast(self, pred: Prediction, rival: str, labels: str | Sequence[str] | LabelSet | None = None
                 ) -> Contrast:
        """The prediction's top action against ``rival`` (any class of its label set, by class or
        display name), with the rival's concepts' maps when the heatmap method makes concept maps.
        ``labels`` must be what was passed to ``predict``."""
        label_set = self.resolve_labels(labels)
        if label_set.classes[pred.class_indices[0]] != pred.class_names[0]:
            raise LabelError("The labels given are not the ones this prediction was made with.")
        names = {n.casefold(): i for i, n in enumerate(label_set.classes)}
        names.update((n.casefold(), i) for i, n in enumerate(label_set.display_names))
        if str(rival).casefold() not in names:
            raise LabelError(f"{str(rival)[:80]!r} is not a class of this label set.")
        _, classes = self.classes(label_set)
        marks = ConceptMarks.from_frame_scores(torch.as_tensor(pred.concept_scores), pred.evidence_measure,
                                               pred.evidence_threshold)
        result = contrast(marks, classes, label_set, pred.class_indices[0], names[str(rival).casefold()])
        units = rival_units(classes, result)
        if units and self.cfg.heatmap_method in heatmaps.SINGLE_PASS:
            images = self.backbone.preprocess(pred.frames)
            with torch.no_grad():
                maps = heatmaps.text_maps(self.backbone, images, classes.unit_emb[units], self.cfg.heatmap_method,
                                          concepts=classes.unit_emb)
            result.rival_maps = grid_maps(maps, self.backbone.grid_size)
        return result

    def _ranked(self, clip: Clip, label_set: LabelSet, out: ScoreOutput, top_k: int,
                grid: tuple[int, int]) -> Prediction:
        """The Prediction's top-k classes and what it says about the clip and the model."""
        probs = out.logits[0].softmax(dim=-1)
        top = probs.topk(min(top_k, len(label_set)))
        indices = top.indices.tolist()
        warnings = [RANDOM_WEIGHTS_WARNING] if self.backbone.random_weights else []
        if clip.info.crop_note:
            warnings.append(clip.info.crop_note)
        return Prediction(
            labels=[label_set.display_names[i] for i in indices],
            scores=top.values.tolist(),
            class_indices=indices,
            class_names=[label_set.classes[i] for i in indices],
            label_set=label_set.name,
            frame_indices=clip.indices[0].tolist(),
            timestamps=clip.timestamps[0].tolist(),
            frames=clip.frames[0],
            video=clip.info,
            model=self.model_name,
            random_weights=self.backbone.random_weights,
            term_scores={name: term[0, indices].tolist() for name, term in out.terms.items()},
            grid=tuple(grid),
            warnings=warnings,
        )
