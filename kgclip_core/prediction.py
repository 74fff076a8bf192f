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
    heatmap_method: str = "cosine"  # the method that made unit_maps and evidence_maps (kgclip_core.heatmaps)
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
