"""The facade the app, the CLI and the tests use: a clip and a label set in, a Prediction out.

A Predictor runs a :class:`KGClipModel`: a fine-tuned checkpoint (``from_checkpoint``) or, by
default, a pretrained CLIP in training-free mode (prompt similarity plus the class's
best-matching semantic units from the knowledge graph). ``Prediction`` is a plain dataclass
holding everything the UI shows, as numpy arrays and lists; no Gradio types here.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kgclip_core.backbone import BackboneConfig, load_backbone
from kgclip_core.budget import Deadline, RequestLimits
from kgclip_core.class_inputs import class_inputs
from kgclip_core.errors import LabelError
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.labels import LabelSet, label_set_of, load_label_set
from kgclip_core.model import checkpoint
from kgclip_core.model.config import ModelConfig
from kgclip_core.model.kgclip import ClassFeatures, ClassProgress, KGClipModel, ScoreOutput
from kgclip_core.video import VideoInfo, read_clip

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = (
    "This model runs on RANDOM weights (no pretrained weights could be loaded): predictions are "
    "meaningless. Connect to the internet once, pass a local weights file, or load a trained checkpoint."
)
_CLASS_CACHE_SIZE = 8
DEFAULT_TRIPLET_SHORTLIST = 16
# How unit maps are made (kgclip_core.explain.textmaps.HEATMAP_METHODS) when the weights do not
# say: a CLIP pretrained on image-text pairs alone (OpenAI's, the first-stage foundation), whose
# patch tokens do not carry their region's meaning; chosen by the pointing game and
# deletion/insertion curves on the synthetic ground truth (docs/EXPLAIN.md). A checkpoint names
# its own (config.json's ``heatmap_method``), as does the shipped foundation (synth.foundation).
DEFAULT_HEATMAP_METHOD = "sclip"


@dataclass
class PredictorConfig:
    """How the Predictor samples clips, which backbone it loads and which heads it runs.

    ``model`` None means training-free scoring on the pretrained backbone.
    ``triplet_shortlist`` replaces the model config's at inference (None keeps it): the
    triplet term then scores only the best classes by the other terms, which costs a fraction
    of scoring every class and kept the demo checkpoint's top-1 on every fresh clip tried
    (docs/MODEL.md); 0 scores every class. ``heatmap_method`` makes the selected units' maps
    (one of ``kgclip_core.explain.textmaps.HEATMAP_METHODS``; the gradient methods cost
    backward passes on every prediction, docs/EXPLAIN.md).
    """

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    model: ModelConfig | None = None
    num_frames: int = 8
    short_side: int = 256
    top_k: int = 5
    triplet_shortlist: int | None = DEFAULT_TRIPLET_SHORTLIST
    heatmap_method: str = DEFAULT_HEATMAP_METHOD


# When a concept of the predicted class counts as shown by the clip (a relative bar: scores of
# different models and label sets are not on one scale). By cosine: when it matches the clip
# better than this share of all the label set's concepts do. For a model with the KG triplet
# encoder: when the model links the clip to it more strongly than to every rival concept, those
# of its EVIDENCE_POOL likeliest classes that the top class lacks, at most EVIDENCE_POOL_UNITS
# concepts in all (two triplet passes per concept, about 1.4 ms each on a CPU for ViT-B/32's
# encoder: a Kinetics-400 class has about 19 concepts). A quantile of that pool put the bar
# inside the top class's own tight cluster of scores: on the demo checkpoint's correct fresh
# clips, 47% of its concepts sat within a tenth of a standard deviation of it, and a learner
# read "wave right hand" explained with "right hand wave ✗" (docs/EXPLAIN.md).
EVIDENCE_QUANTILE = 0.75
EVIDENCE_POOL = 5
EVIDENCE_POOL_UNITS = 40


def evidence_pool(logits: torch.Tensor, class_units: torch.Tensor) -> torch.Tensor:
    """The concepts the triplet evidence is measured against: those of the likeliest classes
    (``logits`` [C], best first), up to ``EVIDENCE_POOL`` classes and ``EVIDENCE_POOL_UNITS``
    concepts, the top class's always all of them. Unit indices, sorted."""
    chosen: list[int] = []
    for rank, c in enumerate(logits.topk(min(EVIDENCE_POOL, len(logits))).indices.tolist()):
        new = [u for u in class_units[c].nonzero().flatten().tolist() if u not in chosen]
        if rank and len(chosen) + len(new) > EVIDENCE_POOL_UNITS:
            new = new[:max(EVIDENCE_POOL_UNITS - len(chosen), 0)]
        chosen += new
    return torch.tensor(sorted(chosen), dtype=torch.long, device=class_units.device)


def clears_bar(scores: torch.Tensor, bar: float, measure: str) -> torch.Tensor:
    """Which evidence scores count as shown: strictly above the strongest rival for the
    ``triplet`` measure ("more strongly than"), at least the quantile for the ``cosine``."""
    return scores > bar if measure == "triplet" else scores >= bar


@dataclass
class Evidence:
    """One concept the predicted class expects (from its knowledge-graph entry), and how
    strongly the clip shows it, by :attr:`Prediction.evidence_measure`: the cosine of its text
    with the frames, or the model's triplet link between the clip and the concept."""

    text: str
    type: str  # movement, body_part, part_state, motion, object, scene
    score: float  # mean cosine over the frames, or the clip's triplet score
    frame_scores: list[float]  # its text's cosine with each sampled frame (where in time it matches)
    best_frame: int  # index into Prediction.frames of its best frame
    present: bool  # score clears Prediction.evidence_threshold (above it for the triplet, at least it for the cosine)


@dataclass
class SelectedUnit:
    """A semantic unit the model selected for the clip, with its score in every frame."""

    text: str
    type: str
    score: float
    weight: float
    frame_scores: list[float]
    in_top_class: bool
    # what the selection ranked it by: its score less what clips usually score of it (the
    # hubness correction, ModelConfig.su_hub_correction); the score itself without it
    rank_score: float = 0.0


@dataclass
class WordAlignment:
    """Which words of a class label matched which frames (weighted token-wise interaction)."""

    label: str
    words: list[str]
    similarity: np.ndarray  # [words, T] cosine of each word with each frame token
    word_weights: list[float]
    frame_weights: list[float]


@dataclass
class EdgeScore:
    """The triplet encoder's plausibility of one knowledge-graph edge, and how well the clip fits its tail."""

    head: str
    relation: str
    tail: str
    score: float
    # the clip's triplet link to the tail concept (as the evidence's); None when the tail is not
    # one of the top class's concepts
    video_score: float | None


@dataclass
class Prediction:
    """Everything known about one clip's prediction, ready to display or serialise."""

    labels: list[str]
    scores: list[float]
    class_indices: list[int]
    class_names: list[str]
    label_set: str
    frame_indices: list[int]
    timestamps: list[float]
    frames: np.ndarray = field(repr=False)  # [T, H, W, 3] uint8
    video: VideoInfo
    model: str
    random_weights: bool
    term_scores: dict[str, list[float]] = field(default_factory=dict)  # each score term, top-k classes
    grid: tuple[int, int] = (0, 0)
    region_maps: np.ndarray | None = field(default=None, repr=False)  # [T, R, H', W'], each sums to 1
    units: list[SelectedUnit] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)  # the top class's own concepts, best first
    evidence_threshold: float | None = None  # the bar a concept's score must clear to count as shown (see above)
    # "cosine" (concept text vs frames) or "triplet" (the KG triplet encoder's video-movement score)
    evidence_measure: str = "cosine"
    unit_maps: np.ndarray | None = field(default=None, repr=False)  # [T, K, H', W'], each sums to 1
    # [T, E, H', W'] in ``evidence`` order, each sums to 1; None for the gradient methods (a pass per text)
    evidence_maps: np.ndarray | None = field(default=None, repr=False)
    heatmap_method: str = "cosine"  # the method that made unit_maps and evidence_maps (explain.textmaps)
    alignment: WordAlignment | None = None
    edges: list[EdgeScore] = field(default_factory=list)
    kg: dict = field(default_factory=dict, repr=False)  # node-link subgraph of the top class and its units
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict (frames and dense maps left out)."""
        out = asdict(self)
        for key in ("frames", "region_maps", "unit_maps", "evidence_maps", "kg"):
            out.pop(key)
        if self.alignment is not None:
            out["alignment"]["similarity"] = self.alignment.similarity.round(4).tolist()
        return out


def _within(deadline: Deadline | None, progress: ClassProgress | None) -> ClassProgress | None:
    """``progress`` that also ends the work once ``deadline`` has passed: it is called between
    text batches, the one place a long embedding can stop cleanly."""
    if deadline is None:
        return progress

    def step(done: int, total: int) -> None:
        deadline.check(f"embedding the label set ({done} of {total} texts done)")
        if progress is not None:
            progress(done, total)

    return step


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
        self._classes: OrderedDict[tuple[str, tuple[str, ...]], tuple[KnowledgeGraph, ClassFeatures]] = OrderedDict()
        # Label sets being embedded now, with their progress, and how many of those embeddings
        # are not in the background; the condition guards all three.
        self._embedding: dict[tuple[str, tuple[str, ...]], tuple[int, int]] = {}
        self._foreground = 0
        self._lock = threading.Condition()

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
        measured to point best with its weights) unless ``overrides`` name one."""
        from kgclip_core.backbone import resolve_device
        from kgclip_core.explain.textmaps import check_method  # imports this module

        ckpt = checkpoint.load(directory, device=str(resolve_device(device)))
        if ckpt.heatmap_method is not None:
            overrides.setdefault("heatmap_method", check_method(ckpt.heatmap_method))
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
        key = (label_set.name, label_set.classes)
        with self._lock:
            while key in self._embedding:
                if progress is not None:
                    progress(*self._embedding[key])
                self._lock.wait(timeout=0.5)
            if key in self._classes:
                self._classes.move_to_end(key)
                return self._classes[key]
            self._embedding[key] = (0, 0)
            self._foreground += not background

        def report(done: int, total: int) -> None:
            with self._lock:
                self._embedding[key] = (done, total)
                while background and self._foreground:
                    self._lock.wait(timeout=0.5)
            if progress is not None:
                progress(done, total)

        try:
            kg = self._graph_for(label_set)
            inputs = class_inputs(label_set, kg, self.model.cfg.class_text)
            entry = (kg, self.model.encode_classes(inputs, progress=report))
            with self._lock:
                self._classes[key] = entry
                while len(self._classes) > _CLASS_CACHE_SIZE:
                    self._classes.popitem(last=False)
        finally:
            with self._lock:
                del self._embedding[key]
                self._foreground -= not background
                self._lock.notify_all()
        return entry

    def embedding_progress(self, label_set: LabelSet) -> tuple[int, int] | None:
        """(texts embedded, texts in all) while ``label_set`` is being embedded, else None."""
        with self._lock:
            return self._embedding.get((label_set.name, label_set.classes))

    def resolve_labels(self, labels: str | Sequence[str] | LabelSet | None) -> LabelSet:
        """A LabelSet from what the caller gave, or the checkpoint's own labels."""
        if isinstance(labels, LabelSet):
            return labels
        if labels is None:
            return self.default_labels or load_label_set("kinetics400")
        return load_label_set(labels)

    @torch.no_grad()
    def predict(self, video_path: str | Path, labels: str | Sequence[str] | LabelSet | None = None,
                top_k: int | None = None, progress: ClassProgress | None = None) -> Prediction:
        """Classify one clip and explain it.

        ``labels``: a built-in set name, a label file, a list of labels or a LabelSet; None
        uses the checkpoint's label set (Kinetics-400 for a plain pretrained CLIP).
        ``progress(done, total)`` follows the texts embedded when the label set is new.
        ``self.limits`` (set by a server) refuses a typed label set over the cost cap before
        any work, and ends a prediction past its time budget with BudgetError, between two
        batches of the text tower (or while it waits for another request embedding the same
        labels).
        """
        label_set = self.resolve_labels(labels)
        top_k = self.cfg.top_k if top_k is None else top_k  # 0 is an error, not "the default"
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise LabelError(f"top_k must be a whole number of at least 1, got {top_k!r}.")
        limits = self.limits or RequestLimits(budget_s=None, max_custom_prompt_tokens=None)
        limits.check_labels(label_set)
        deadline = limits.deadline()
        clip = read_clip(video_path, self.cfg.num_frames, short_side=self.cfg.short_side)
        frames = clip.frames[0]
        images = self.backbone.preprocess(frames)[None]
        # Imported here: kgclip_core.explain imports this module.
        from kgclip_core.explain import textmaps

        # The clip before the label set: a bad file is refused before any text is embedded,
        # and while the warm-up still embeds this label set (the first request after a
        # start), the clip's encoding and the imports above overlap with it.
        with textmaps.recorder(self.backbone, self.cfg.heatmap_method) as recorded:
            video = self.model.encode_video(images)
        kg, classes = self.classes(label_set, _within(deadline, progress))
        out = self.model.score(video, classes, explain=True)
        probs = out.logits[0].softmax(dim=-1)
        top = probs.topk(min(top_k, len(label_set)))
        indices = top.indices.tolist()
        warnings = [RANDOM_WEIGHTS_WARNING] if self.backbone.random_weights else []
        if clip.info.crop_note:
            warnings.append(clip.info.crop_note)
        pred = Prediction(
            labels=[label_set.display_names[i] for i in indices],
            scores=top.values.tolist(),
            class_indices=indices,
            class_names=[label_set.classes[i] for i in indices],
            label_set=label_set.name,
            frame_indices=clip.indices[0].tolist(),
            timestamps=clip.timestamps[0].tolist(),
            frames=frames,
            video=clip.info,
            model=self.model_name,
            random_weights=self.backbone.random_weights,
            term_scores={name: term[0, indices].tolist() for name, term in out.terms.items()},
            grid=tuple(video.grid),
            warnings=warnings,
        )
        evidence_units = self._explain(pred, out, classes, kg, label_set)
        method = self.cfg.heatmap_method
        wanted: dict[str, list[int]] = {}
        if out.su is not None and method != "cosine":
            wanted["unit_maps"] = out.su.indices[0].tolist()
        # Where the top class's own concepts show: more texts in the same pass for the
        # single-pass methods; the gradient methods would cost a pass per concept.
        if evidence_units and method in textmaps.SINGLE_PASS:
            wanted["evidence_maps"] = evidence_units
        if wanted:  # one call for both: the attention-path methods rerun the last block once
            units = [u for ids in wanted.values() for u in ids]
            maps = textmaps.text_maps(self.backbone, images[0], classes.unit_emb[units], method, recorded,
                                      patches=video.patches[0], concepts=classes.unit_emb)
            maps = F.adaptive_avg_pool2d(maps, video.grid)  # pixel maps (integrated gradients) onto the grid
            maps = (maps / maps.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)).cpu().numpy()
            start = 0
            for name, ids in wanted.items():
                setattr(pred, name, maps[:, start:start + len(ids)])
                start += len(ids)
        pred.heatmap_method = method
        return pred

    def _evidence(self, pred: Prediction, out: ScoreOutput, classes: ClassFeatures, top: int
                  ) -> tuple[list[int], dict[int, float]]:
        """The top class's own concepts, scored against the clip and every frame, present or
        not; returns their unit indices in ``pred.evidence`` order, and the model's triplet link
        from the clip to every concept of the evidence pool ({unit index: score}; empty without
        the triplet encoder).

        A model with the KG triplet encoder is asked itself: its video-movement score (the link
        KG-CLIP's triple and direct losses train, from the frames the classifier reads). The
        plain cosine of a trained model's frames with concept texts can disagree with its
        decision: on the demo checkpoint's 93 correct fresh clips it marked 69% of the top
        action's concepts shown (none in 9 clips), the triplet score against its strongest
        rival 99% (none in 0); of the other likely actions' own concepts 34% and 2%
        (docs/EXPLAIN.md)."""
        if classes.unit_emb.shape[0] == 0:
            return [], {}
        own = classes.class_unit_mask[top].nonzero().flatten()
        triplet = self.model.triplet
        if out.su is not None:  # already computed: the best cosine over each frame's tokens
            cosines = out.su.frame_scores[0].float()
        else:
            cosines = F.normalize(out.frame_tokens[0], dim=-1).float() @ classes.unit_emb.T.float()  # [T, U]
        # Where in time each concept's text matches (the triplet encoder scores the whole clip).
        frame_scores = cosines[:, own]
        links: dict[int, float] = {}
        rival = None
        if triplet is not None:
            pool = evidence_pool(out.logits[0], classes.class_unit_mask)
            fwd, inv = triplet.pair_scores(out.video_emb[:1], "video-movement", classes.unit_emb[pool])
            linked = (0.5 * (fwd + inv))[0].float()
            links = dict(zip(pool.tolist(), linked.tolist()))
            rival = ~classes.class_unit_mask[top, pool]
        if rival is not None and bool(rival.any()):
            reference = linked
            scores = torch.tensor([links[u] for u in own.tolist()])
            pred.evidence_measure = "triplet"
            pred.evidence_threshold = float(reference[rival].max())
        else:  # no triplet encoder, or no rival concept to measure its link against
            reference = cosines.mean(0)
            scores = reference[own]
            pred.evidence_threshold = float(torch.quantile(reference, EVIDENCE_QUANTILE))
        shown = clears_bar(scores, pred.evidence_threshold, pred.evidence_measure)
        order = sorted(range(len(own)), key=lambda i: -float(scores[i]))
        for i in order:
            u = int(own[i])
            pred.evidence.append(Evidence(
                text=classes.unit_texts[u], type=classes.unit_types[u], score=float(scores[i]),
                frame_scores=frame_scores[:, i].tolist(), best_frame=int(frame_scores[:, i].argmax()),
                present=bool(shown[i])))
        return [int(own[i]) for i in order], links

    def _explain(self, pred: Prediction, out: ScoreOutput, classes: ClassFeatures, kg: KnowledgeGraph,
                 label_set: LabelSet) -> list[int]:
        """Copy the model's intermediate results for the top class into the Prediction;
        returns the unit indices of its evidence (``pred.evidence`` order)."""
        top = pred.class_indices[0]
        if out.region_maps is not None:
            pred.region_maps = out.region_maps[0].float().cpu().numpy()
        if out.unit_maps is not None:
            pred.unit_maps = out.unit_maps[0].float().cpu().numpy()
        evidence_units, links = self._evidence(pred, out, classes, top)
        if out.su is not None:
            top_units = classes.class_unit_mask[top]
            ranked = out.su.video_scores if out.su.rank_scores is None else out.su.rank_scores
            for rank, u in enumerate(out.su.indices[0].tolist()):
                pred.units.append(SelectedUnit(
                    text=classes.unit_texts[u], type=classes.unit_types[u],
                    score=float(out.su.video_scores[0, u]), weight=float(out.su.weights[0, rank]),
                    frame_scores=out.su.frame_scores[0, :, u].tolist(), in_top_class=bool(top_units[u]),
                    rank_score=float(ranked[0, u])))
        if out.wti is not None:
            mask = classes.word_mask[top]
            pred.alignment = WordAlignment(
                label=pred.labels[0],
                words=self.backbone.word_pieces(pred.labels[0])[: int(mask.sum())],
                similarity=out.wti.similarity[0, top][mask].float().cpu().numpy(),
                word_weights=out.wti.word_weights[top][mask].tolist(),
                frame_weights=out.wti.frame_weights[0].tolist())
        if out.edge_scores is not None:
            # The clip's link to an edge's tail is the evidence's link to that concept.
            own = {classes.unit_texts[u]: u for u in classes.class_unit_mask[top].nonzero().flatten().tolist()}
            for k, e in enumerate(out.edge_index.tolist()):
                head, relation, tail = classes.triples[e]
                if head == pred.labels[0]:
                    pred.edges.append(EdgeScore(head, relation, tail, float(out.edge_scores[k]),
                                                links.get(own.get(tail, -1))))
        pred.kg = kg.subgraph([label_set.classes[top]]).to_json()
        return evidence_units
