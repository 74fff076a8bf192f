"""What a prediction holds: plain dataclasses of numpy arrays and lists, ready to show or serialise.

The Predictor fills them (``kgclip_core.predictor``); the figures, the report and the app read
them (``kgclip_core.explain``). No torch tensors and no Gradio types here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from kgclip_core.video import VideoInfo


@dataclass
class Evidence:
    """One concept a class expects (from its knowledge-graph entry), and whether the clip shows
    it, by :attr:`Prediction.evidence_measure`: a concept detector's calibrated probability, or
    the cosine of the concept's text with the frames (a relative rule), never by which class won."""

    text: str
    type: str  # movement, body_part, part_state, motion, object, scene
    score: float  # the probability that the clip shows it (detector), or its mean cosine with the frames
    frame_scores: list[float]  # the same score in each sampled frame (where in time it shows)
    best_frame: int  # index into Prediction.frames of its best frame
    present: bool  # the mark: score reaches Prediction.evidence_threshold


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
class Contrast:
    """Why one action and not another: the concepts that tell them apart, each marked against the clip.

    ``own``: what ``label`` needs and ``rival`` lacks; ``rival_own``: the reverse; ``shared``: the
    concepts both need (they explain neither over the other). ``rival_maps`` [T, len(rival_own),
    H', W'] are the rival's concepts' maps (each sums to 1; the label's own are among the
    Prediction's evidence maps); None where the heatmap method makes no concept maps.
    """

    label: str
    rival: str
    rival_index: int  # the rival's class index in the label set
    own: list[Evidence] = field(default_factory=list)
    rival_own: list[Evidence] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)
    rival_maps: np.ndarray | None = field(default=None, repr=False)


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
    evidence_threshold: float | None = None  # the bar a concept's score must reach to be marked shown
    # "detector" (a calibrated probability, kgclip_core.model.concept_detector) or "cosine" (relative)
    evidence_measure: str = "cosine"
    contrast: Contrast | None = None  # the top action against the runner-up
    # How well the top action accounts for what the clip shows, in [0, 1] (None without a detector),
    # and whether that is too little to name it: "none of these labels fits this clip well".
    fit: float | None = None
    unsure: bool = False
    unknown_labels: list[str] = field(default_factory=list)  # typed labels a fine-tuned model never learned
    shown_concepts: list[str] = field(default_factory=list)  # the label set's concepts the clip shows, best first
    # [T, U] every concept of the label set scored in each frame (by evidence_measure), so that the
    # top action can be contrasted with any class later (Predictor.contrast) without the model
    concept_scores: np.ndarray | None = field(default=None, repr=False)
    unit_maps: np.ndarray | None = field(default=None, repr=False)  # [T, K, H', W'], each sums to 1
    # [T, E, H', W'] in ``evidence`` order, each sums to 1; None for the gradient methods (a pass per text)
    evidence_maps: np.ndarray | None = field(default=None, repr=False)
    heatmap_method: str = "cosine"  # the method that made unit_maps and evidence_maps (kgclip_core.heatmaps)
    alignment: WordAlignment | None = None
    edges: list[EdgeScore] = field(default_factory=list)
    kg: dict = field(default_factory=dict, repr=False)  # node-link subgraph of the top class and its units
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict (frames and dense maps left out)."""
        out = asdict(self)
        for key in ("frames", "region_maps", "unit_maps", "evidence_maps", "kg", "concept_scores"):
            out.pop(key)
        if self.contrast is not None:
            out["contrast"].pop("rival_maps")
        if self.alignment is not None:
            out["alignment"]["similarity"] = self.alignment.similarity.round(4).tolist()
        return out


@dataclass
class TimelineWindow:
    """One window of a long clip's timeline: a stretch of ``Timeline.window_s`` seconds classified
    on its own, as a short clip is (``kgclip_core.timeline``)."""

    start: float  # seconds: the stretch its frames are sampled from
    end: float
    labels: list[str]  # its top-k actions (display names), best first
    class_names: list[str]
    scores: list[float]
    frame_indices: list[int]  # the frames it read (frame numbers in the video)
    fit: float | None  # how well its top action fits (as Prediction.fit), and whether that is "not sure"
    unsure: bool
    evidence: list[Evidence] = field(default_factory=list)  # its top action's own concepts, best first


@dataclass
class Segment:
    """Consecutive windows with the same top action, merged: what happens from ``start`` to ``end``."""

    start: float  # seconds of the clip it covers: each window owns the stretch around its centre
    end: float
    label: str
    class_name: str
    windows: list[int]  # indices into Timeline.windows, in time order
    score: float  # its windows' mean score of the action
    unsure: bool  # most of its windows are "not sure"
    best_window: int  # the window (index into Timeline.windows) most sure of the action: what explains it


@dataclass
class Timeline:
    """What happens when in a clip: its windows, each classified alone, and their segments."""

    windows: list[TimelineWindow]
    segments: list[Segment]
    window_s: float
    stride_s: float
    frames_per_window: int
    frames_decoded: int  # distinct frames read from the file (shared by overlapping windows)
    label_set: str
    video: VideoInfo
    model: str
    random_weights: bool
    warnings: list[str] = field(default_factory=list)

    def segment_at(self, seconds: float) -> Segment:
        """The segment covering the time ``seconds`` of the clip (the first or last outside it)."""
        for segment in self.segments:
            if seconds < segment.end:
                return segment
        return self.segments[-1]

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)
