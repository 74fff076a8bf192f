"""A concept detector: which knowledge-graph concepts a clip shows, as calibrated probabilities.

The cosine of a frame with a concept's text says how alike they are, not whether the concept
happens: on the synthetic world's ground truth the foundation's cosines told a present movement
from an absent one hardly better than chance (area under the ROC curve 0.6-0.7, docs/EXPLAIN.md),
and a fine-tuned model's own links rank the predicted class's concepts high whatever the clip
shows. Where labelled clips exist (the synthetic world records which movements and part states
happen in every frame), a detector over the frozen image tower's features learns each concept's
presence (one hidden layer shared by the concepts: a linear one missed the concepts of one program
when another ran beside it, the steps of "march and swing arms"); its clip score (the best frame's
logit) is then calibrated on the development split (Platt scaling), so a 0.8 means that four in
five such concepts really happen.

Its features (:func:`concept_features`) are each frame's embedding, how it changes around that
frame (a wave and a raised hand look alike in one frame and differ between frames), the
strongest and mean patch tokens (where a part is and what it does), how the patch tokens change
over the frame and over its left and right halves, and the clip's maximum of all of these. On the
first development split the frame embedding alone found 68% of the demo checkpoint's present
concepts at 82% precision, the first features (without the patches' change and the clip's)
87% at 93%; on the second, larger one those found 86% at 95%, these 94% at 97% (linear, 9,264
training clips), and with the hidden layer 97% at 98% (docs/EXPLAIN.md).

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
# What concept_features computes: a detector of other features (or other layers) is refused.
FEATURES = "frame+temporal+patches+patch-change+clip/2"
MAX_CONCEPTS = 20_000  # far beyond any label set's concepts (Kinetics-400 has about 1,500)
MAX_DIM = 8192
MAX_HIDDEN = 4096
TENSORS = ("mean", "std", "hidden_weight", "hidden_bias", "weight", "bias")
BATCH = 256


def concept_features(frames: torch.Tensor, patches: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Per-frame features [T, 16D] of a clip's frame embeddings [T, D] and patch tokens [T, P, D]
    (the image tower's, in the joint space; ``grid`` = (rows, columns) of the P patches).

    Each frame's own: the normalised frame embedding, its change from the previous to the next
    frame, its difference from the clip's mean, the strongest and the mean normalised patch token,
    and how much the patch tokens change around the frame, over the whole frame and over its left
    and its right columns (where a moving part is: a left and a right wave look alike in one frame
    and in the frame's mean change). Then the clip's: the per-dimension maximum of those over the
    clip's frames, so each frame is judged knowing what the whole clip does (a step of a march
    lifts one leg in some frames only). On the development split, the clip's and the patches'
    change raised the demo checkpoint's recall from 85% to 93% at 97% precision (docs/EXPLAIN.md).
    """
    x = F.normalize(frames.float(), dim=-1)
    tokens = F.normalize(patches.float(), dim=-1)
    rows, columns = grid
    earlier, later = _around(tokens)
    change = (later - earlier).abs().reshape(len(tokens), rows, columns, -1)
    half = max(1, columns // 2)  # mirror-symmetric halves: an odd middle column belongs to neither
    before, after = _around(x)
    own = torch.cat([x, after - before, x - x.mean(0), tokens.amax(1), tokens.mean(1), change.mean((1, 2)),
                     change[:, :, :half].mean((1, 2)), change[:, :, columns - half:].mean((1, 2))], dim=-1)
    return torch.cat([own, own.amax(0, keepdim=True).expand_as(own)], dim=-1)


def _around(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each frame's previous and next frame along dim 0 (the ends repeat themselves)."""
    return torch.cat([x[:1], x[:-1]]), torch.cat([x[1:], x[-1:]])


def feature_width(embed_dim: int) -> int:
    """How many features :func:`concept_features` gives a frame of a model of ``embed_dim``."""
    return 16 * embed_dim


@dataclass
class ConceptDetector:
    """Presence detectors of ``texts`` over per-frame features [T, F] (:func:`concept_features`):
    one small network shared by every concept, a hidden layer then one logit per concept.

    ``mean``/``std`` standardise the features, ``hidden_weight`` [F, H] and ``hidden_bias`` [H]
    make the hidden layer (ReLU), ``weight`` [H, K] and ``bias`` [K] each frame's logit, and the
    clip's probability is ``sigmoid(slope * max_t logit + offset)``. ``unsure_below``: the fit
    score (``kgclip_core.evidence``) under which a prediction is flagged "not sure", chosen on
    the development split (None: never flagged).
    """

    texts: list[str]
    mean: torch.Tensor
    std: torch.Tensor
    hidden_weight: torch.Tensor
    hidden_bias: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    slope: float = 1.0
    offset: float = 0.0
    unsure_below: float | None = None

    def frame_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Presence logits [T, K] of every concept in each frame of features [T, F]."""
        hidden = F.relu(((features.float() - self.mean) / self.std) @ self.hidden_weight + self.hidden_bias)
        return hidden @ self.weight + self.bias

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
        tensors = {name: getattr(self, name) for name in TENSORS}
        save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, str(path), metadata=meta)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ConceptDetector:
        """Read a detector written by :meth:`save`; a ConfigError for anything else, checked
        from the header before a tensor is read."""
        name = Path(path).name
        try:
            shapes, meta = read_header(Path(path))
            if meta.get("format") != FORMAT:
                raise ConfigError(f"{name} is not a concept detector.")
            if meta.get("features") != FEATURES:
                raise ConfigError(f"{name} is a concept detector of other features "
                                  f"({meta.get('features')!r}, not {FEATURES!r}): train it again.")
            if set(shapes) != set(TENSORS):
                raise ConfigError(f"{name} is a concept detector of other layers ({', '.join(sorted(shapes))}, "
                                  f"not {', '.join(TENSORS)}): train it again.")
            texts = json.loads(meta["texts"])
            dim, width = shapes["hidden_weight"] if len(shapes["hidden_weight"]) == 2 else (0, 0)
            count = shapes["bias"][0] if len(shapes["bias"]) == 1 else 0
            expected = {"mean": (dim,), "std": (dim,), "hidden_bias": (width,), "weight": (width, count)}
            if (not 0 < dim <= MAX_DIM or not 0 < width <= MAX_HIDDEN or not 0 < count <= MAX_CONCEPTS
                    or len(texts) != count or not all(isinstance(t, str) for t in texts)
                    or any(shapes[k] != v for k, v in expected.items())):
                raise ConfigError(f"{name}: a concept detector of unexpected shapes {shapes}.")
            calibration = json.loads(meta["calibration"])
            tensors = {k: v.float() for k, v in load_file(str(path)).items()}  # sizes checked above
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as err:
            raise ConfigError(f"Cannot read the concept detector {name}: {err}") from None
        unsure = calibration.get("unsure_below")
        return cls(texts, **tensors, slope=float(calibration["slope"]), offset=float(calibration["offset"]),
                   unsure_below=None if unsure is None else float(unsure))


def fit_detector(features: torch.Tensor, labels: torch.Tensor, texts: list[str], hidden: int = 512,
                 epochs: int = 30, weight_decay: float = 1e-2, seed: int = 0) -> ConceptDetector:
    """Presence detectors fitted on frames' features [N, F] (:func:`concept_features`) and their
    concepts' ground truth [N, K] (1 where the frame shows the concept): one hidden layer of
    ``hidden`` units (dropout 0.2 while training), binary cross-entropy, AdamW (learning rate
    1e-3, ``weight_decay``), ``epochs`` passes in batches of 256, reproducible from ``seed``."""
    x = features.float()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z, target = (x - mean) / std, labels.float()
    # The initialisation, the batches and the dropout all draw from the seed, and the caller's
    # random state is left as it was.
    with torch.random.fork_rng(), torch.enable_grad():
        torch.manual_seed(seed)
        first, second = torch.nn.Linear(z.shape[1], hidden), torch.nn.Linear(hidden, target.shape[1])
        net = torch.nn.Sequential(first, torch.nn.ReLU(), torch.nn.Dropout(0.2), second)
        optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=weight_decay)
        for _ in range(epochs):
            order = torch.randperm(len(z))
            for start in range(0, len(z), BATCH):
                batch = order[start:start + BATCH]
                loss = F.binary_cross_entropy_with_logits(net(z[batch]), target[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    return ConceptDetector(list(texts), mean, std, first.weight.detach().T.contiguous(), first.bias.detach(),
                           second.weight.detach().T.contiguous(), second.bias.detach())


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
