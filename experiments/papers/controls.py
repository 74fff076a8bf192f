"""The grid's reference points that are not KG-CLIP variants.

- **zero-shot**: the foundation, untrained, classifying by the class text (the floor every
  fine-tuned variant must clear);
- **linear probe**: a logistic regression on the foundation's frozen, mean-pooled frame
  embeddings (what the pretrained features give with the least adaptation);
- **tiny CNN**: a small (2+1)-D convolutional network trained from scratch on the same clips,
  crops and steps (what the data alone supports, without any pretraining or text).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kgclip_core.model.kgclip import KGClipModel
from kgclip_core.training.protocols import few_shot
from experiments.papers.data import ClipSet

PROBE_STEPS, PROBE_LR, PROBE_WEIGHT_DECAY = 300, 1e-2, 1e-3
CNN_LR = 1e-3


def subset_indices(train: ClipSet, shots: int, seed: int) -> list[int]:
    """The training clips of a setting: all of them, or the same K per class the variants get."""
    if not shots:
        return list(range(len(train)))
    index = {p: i for i, p in enumerate(train.paths)}
    return [index[s.path] for s in few_shot(train.samples(), shots, seed, len(train.classes))]


@torch.no_grad()
def frame_features(model: KGClipModel, clips: ClipSet, frames: int, batch: int = 32) -> torch.Tensor:
    """L2-normalised mean of the backbone's frame embeddings [N, D] (evaluation frames, no crop)."""
    out = []
    for start in range(0, len(clips), batch):
        idx = list(range(start, min(start + batch, len(clips))))
        out.append(model.encode_video(clips.clips(idx, frames, None)).frames.mean(1))
    return F.normalize(torch.cat(out), dim=-1)


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, num_classes: int, seed: int) -> nn.Linear:
    """A logistic regression on frozen features, full batch, AdamW."""
    torch.manual_seed(seed)
    probe = nn.Linear(train_x.shape[1], num_classes)
    opt = torch.optim.AdamW(probe.parameters(), lr=PROBE_LR, weight_decay=PROBE_WEIGHT_DECAY)
    for _ in range(PROBE_STEPS):
        opt.zero_grad()
        F.cross_entropy(probe(train_x * 10.0), train_y).backward()  # x10: unit vectors to a usable logit range
        opt.step()
    return probe.eval()


class TinyCNN(nn.Module):
    """Per-frame 2-D convolutions, a temporal convolution over frames, mean pooling, a linear head."""

    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        layers, c = [], 3
        for out in (width, width, 2 * width, 2 * width):
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.frames = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.temporal = nn.Conv1d(c, c, 3, padding=1)
        self.head = nn.Linear(c, num_classes)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """clips [B, T, 3, S, S] -> logits [B, C]."""
        b, t = clips.shape[:2]
        x = self.frames(clips.flatten(0, 1)).reshape(b, t, -1).transpose(1, 2)  # [B, C, T]
        return self.head(F.relu(self.temporal(x)).mean(-1))


def train_cnn(train: ClipSet, frames: int, steps: int, batch: int, seed: int) -> TinyCNN:
    """The tiny CNN, trained with the variants' batches, crops and step count."""
    torch.manual_seed(seed)
    net = TinyCNN(len(train.classes))
    opt = torch.optim.AdamW(net.parameters(), lr=CNN_LR, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, CNN_LR, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng([seed, 7])
    order = np.empty(0, dtype=np.int64)
    size = min(batch, len(train))
    net.train()
    for _ in range(steps):
        if len(order) < size:
            order = np.concatenate([order, rng.permutation(len(train))])
        idx, order = order[:size], order[size:]
        loss = F.cross_entropy(net(train.clips(idx, frames, rng)), train.labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def cnn_correct(net: TinyCNN, clips: ClipSet, frames: int, batch: int = 32) -> list[int]:
    """Per-clip correctness (1/0) of the CNN on ``clips``."""
    hits = []
    for start in range(0, len(clips), batch):
        idx = list(range(start, min(start + batch, len(clips))))
        hits += (net(clips.clips(idx, frames, None)).argmax(1) == clips.labels[idx]).int().tolist()
    return hits
