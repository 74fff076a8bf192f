"""A concept detector: which knowledge-graph concepts a clip shows, as calibrated probabilities.

The cosine of a frame with a concept's text says how alike they are, not whether the concept
happens: on the synthetic world's ground truth the foundation's cosines told a present movement
from an absent one hardly better than chance (area under the ROC curve 0.6-0.7, docs/EXPLAIN.md),
and a fine-tuned model's own links rank the predicted class's concepts high whatever the clip
shows. Where labelled clips exist (the synthetic world records which movements and part states
happen in every frame), a linear detector over the frozen image tower's features learns each
concept's presence; its clip score (the best frame's logit) is then calibrated on the development
split (Platt scaling), so a 0.8 means that four in five such concepts really happen.

Its features (:func:`concept_features`) are each frame's embedding, how it changes around that
frame (a wave and a raised hand look alike in one frame and differ between frames) and the
strongest and mean patch tokens (where a part is and what it does); on the development split the
frame embedding alone found 68% of the demo checkpoint's present concepts at 82% precision, these
features 87% at 93% (docs/EXPLAIN.md).

The detector is one small ``safetensors`` file beside a model's weights (``concepts.safetensors``):
the concept texts and the calibration in its metadata, the weights as tensors. A model without
one explains with a relative rule instead (``kgclip_core.evidence``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kgclip_core.errors import ConfigError
from kgclip_core.model.safetensors_header import read_header

FILE_NAME = "concepts.safetensors"
FORMAT = "kgclip-concept-detector"
FEATURES = "frame+temporal+patches/1"  # what concept_features computes: a detector of other features is refused
MAX_CONCEPTS = 20_000  # far beyond any label set's concepts (Kinetics-400 has about 1,500)
MAX_DIM = 8192


def concept_features(frames: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
    """Per-frame features [T, 5D] of a clip's frame embeddings [T, D] and patch tokens [T, P, D]
    (the image tower's, in the joint space): the normalised frame embedding, its change from the
    previous to the next frame, its difference from the clip's mean, and the strongest and the
    mean normalised patch token."""
    x = F.normalize(frames.float(), dim=-1)
    tokens = F.normalize(patches.float(), dim=-1)
    before, after = torch.cat([x[:1], x[:-1]]), torch.cat([x[1:], x[-1:]])
    return torch.cat([x, after - before, x - x.mean(0), tokens.amax(1), tokens.mean(1)], dim=-1)


def feature_width(embed_dim: int) -> int:
    """How many features :func:`concept_features` gives a frame of a model of ``embed_dim``."""
    return 5 * embed_dim


@dataclass
class ConceptDetector:
    """Linear presence detectors of ``texts`` over per-frame features [T, F] (:func:`concept_features`).

    ``mean``/``std`` standardise the features, ``weight`` [D, K] and ``bias`` [K] give each
    frame's logit, and the clip's probability is ``sigmoid(slope * max_t logit + offset)``.
    ``unsure_below``: the fit score (``kgclip_core.evidence``) under which a prediction is
    flagged "not sure", chosen on the development split (None: never flagged).
    """

    texts: list[str]
    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    slope: float = 1.0
    offset: float = 0.0
    unsure_below: float | None = None

    def frame_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Presence logits [T, K] of every concept in each frame of features [T, F]."""
        return ((features.float() - self.mean) / self.std) @ self.weight + self.bias

    def probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities [T, K] that each frame shows each concept (a clip shows it
        when its best frame does)."""
        return torch.sigmoid(self.slope * self.frame_logits(features) + self.offset)

    def covers(self, texts: list[str]) -> bool:
        """Whether every one of ``texts`` has a detector here."""
        known = set(self.texts)
        return all(t in known for t in texts)

    def index(self, texts: list[str]) -> torch.Tensor:
        """Positions of ``texts`` among this detector's (all must be covered)."""
        where = {t: i for i, t in enumerate(self.texts)}
        return torch.tensor([where[t] for t in texts], dtype=torch.long)

    def save(self, path: str | Path) -> Path:
        """Write the detector as one safetensors file; returns its path."""
        meta = {"format": FORMAT, "features": FEATURES, "texts": json.dumps(self.texts),
                "calibration": json.dumps({"slope": self.slope, "offset": self.offset,
                                           "unsure_below": self.unsure_below})}
        tensors = {"mean": self.mean, "std": self.std, "weight": self.weight, "bias": self.bias}
        save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ConceptDetector:
        """Read a detector written by :meth:`save`; a ConfigError for anything else, checked
        from the header before a tensor is read."""
        name = Path(path).name
        try:
            shapes, meta = read_header(Path(path))
            if meta.get("format") != FORMAT or set(shapes) != {"mean", "std", "weight", "bias"}:
                raise ConfigError(f"{name} is not a concept detector.")
            if meta.get("features") != FEATURES:
                raise ConfigError(f"{name} is a concept detector of other features "
                                  f"({meta.get('features')!r}, not {FEATURES!r}): train it again.")
            texts = json.loads(meta["texts"])
            dim, count = shapes["weight"] if len(shapes["weight"]) == 2 else (0, 0)
            if (not 0 < dim <= MAX_DIM or not 0 < count <= MAX_CONCEPTS or len(texts) != count
                    or not all(isinstance(t, str) for t in texts)
                    or (shapes["mean"], shapes["std"], shapes["bias"]) != ((dim,), (dim,), (count,))):
                raise ConfigError(f"{name}: a concept detector of unexpected shape {shapes['weight']}.")
            calibration = json.loads(meta["calibration"])
            tensors = {k: v.float() for k, v in load_file(str(path)).items()}  # sizes checked above
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as err:
            raise ConfigError(f"Cannot read the concept detector {name}: {err}") from None
        unsure = calibration.get("unsure_below")
        return cls(texts, **tensors, slope=float(calibration["slope"]), offset=float(calibration["offset"]),
                   unsure_below=None if unsure is None else float(unsure))


def fit_detector(features: torch.Tensor, labels: torch.Tensor, texts: list[str], l2: float = 1e-3,
                 iterations: int = 500) -> ConceptDetector:
    """Logistic presence detectors fitted on frames' features [N, F] (:func:`concept_features`) and
    their concepts' ground truth [N, K] (1 where the frame shows the concept), with an L2 penalty
    ``l2`` (L-BFGS)."""
    x = features.float()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    weight = torch.zeros(z.shape[1], labels.shape[1], requires_grad=True)
    bias = torch.zeros(labels.shape[1], requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")
    target = labels.float()

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z @ weight + bias, target) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return ConceptDetector(list(texts), mean, std, weight.detach(), bias.detach())


def platt(scores: torch.Tensor, labels: torch.Tensor, iterations: int = 200) -> tuple[float, float]:
    """(slope, offset) of the logistic map from ``scores`` to the probability that ``labels``
    [same shape, 0/1] is 1: Platt scaling, fitted by maximum likelihood."""
    params = torch.tensor([1.0, 0.0], requires_grad=True)
    optimiser = torch.optim.LBFGS([params], max_iter=iterations, line_search_fn="strong_wolfe")
    s, y = scores.float().flatten(), labels.float().flatten()

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.binary_cross_entropy_with_logits(params[0] * s + params[1], y)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    slope, offset = params.detach().tolist()
    return slope, offset
