"""Video datasets in the formats the field already uses, decoded in DataLoader workers.

- List files: ``relative/path label_index`` per line (mmaction2 / X-CLIP), or a CSV with a
  ``path,label`` header whose label is an index or a class name. Paths are relative to a
  video root and name a video file or a folder of frame images.
- Label files: a built-in label set name, a CSV ``id,name`` or a text file, one class a line.

Problems in the list itself (a label out of range, an unparsable line, no samples at all)
fail at load time, naming the file and line. A video that cannot be decoded only shows up
when it is read: the dataset then returns None, :func:`collate` drops it and counts it in
the batch's ``skipped`` so the trainer can report it; one bad file never kills an epoch.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, DistributedSampler

from kgclip_core.errors import ConfigError, LabelError, VideoError
from kgclip_core.labels import LabelSet, builtin_label_sets, custom_label_set, display_name, load_label_set
from kgclip_core.training.transforms import ClipTransform
from kgclip_core.video import read_clip, sample_indices

log = logging.getLogger(__name__)

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Sample:
    """One labelled video: an absolute path (file or frame folder) and a class index."""

    path: str
    label: int


def load_labels(spec: str) -> LabelSet:
    """A label set from a built-in name, an ``id,name`` CSV, or a text file (one class a line)."""
    if spec.strip() in builtin_label_sets() or not spec.lower().endswith(".csv"):
        return load_label_set(spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise LabelError(f"Label file {str(path)!r} does not exist.")
    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row]
    if rows and not rows[0][0].strip().lstrip("-").isdigit():
        rows = rows[1:]  # a header such as "id,name"
    by_id: dict[int, str] = {}
    for row in rows:
        if len(row) < 2 or not row[0].strip().isdigit():
            raise LabelError(f"{path}: rows must be 'id,name' with an integer id; got {row!r}.")
        by_id[int(row[0])] = row[1]
    if sorted(by_id) != list(range(len(by_id))):
        raise LabelError(f"{path}: class ids must be 0..{len(by_id) - 1}, each exactly once.")
    return custom_label_set([by_id[i] for i in range(len(by_id))], name=path.stem)


def _parse_label(raw: str, labels: LabelSet, where: str) -> int:
    raw = raw.strip()
    if raw.lstrip("-").isdigit():
        index = int(raw)
    else:
        # Dataset files often write "climb_stairs" or "ApplyEyeMakeup" for a class; both
        # spellings resolve through the display name too.
        for name in (raw, display_name(raw)):
            if name in labels.classes or name in labels.display_names:
                index = labels.index(name)
                break
        else:
            raise LabelError(f"{where}: {raw!r} is not a class of label set {labels.name!r}.")
    if not 0 <= index < len(labels):
        raise LabelError(
            f"{where}: label {index} is outside 0..{len(labels) - 1} "
            f"(label set {labels.name!r} has {len(labels)} classes). Check the list and the label file."
        )
    return index


def read_list(path: str | Path, labels: LabelSet, video_root: str | Path = "") -> list[Sample]:
    """Samples of a list file (``path label`` lines or a ``path,label`` CSV), labels checked."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"List file {str(path)!r} does not exist.")
    root = Path(video_root).expanduser() if video_root else path.parent
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise ConfigError(f"{path}: a CSV list needs a 'path,label' header.")
        rows = [(i, r["path"], r["label"] or "") for i, r in enumerate(reader, start=2)]
    else:
        rows = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.strip().rsplit(maxsplit=1)  # paths may contain spaces, labels do not
            if len(parts) != 2:
                raise ConfigError(f"{path}:{i}: expected 'relative/path label_index', got {line.strip()!r}.")
            rows.append((i, parts[0], parts[1]))
    samples = [Sample(str(root / rel), _parse_label(raw, labels, f"{path}:{i}")) for i, rel, raw in rows]
    if not samples:
        raise ConfigError(f"List file {path} has no samples; an empty split cannot be trained or evaluated.")
    return samples


def write_list(samples: Sequence[Sample], path: str | Path, video_root: str | Path = "") -> Path:
    """Write samples as a ``path label`` list (paths relative to ``video_root`` when inside it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = Path(video_root) if video_root else None
    lines = []
    for s in samples:
        p = Path(s.path)
        rel = p.relative_to(root) if root is not None and p.is_relative_to(root) else p
        lines.append(f"{rel.as_posix()} {s.label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_frame_folder(
    folder: Path, num_frames: int, mode: str, num_views: int, short_side: int, rng: np.random.Generator | None
) -> np.ndarray:
    """Sampled frames ``[V, T, H, W, 3]`` of a folder of images (sorted by file name)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise VideoError(f"Frame folder {folder} holds no {'/'.join(FRAME_SUFFIXES)} images.")
    indices = sample_indices(len(files), num_frames, mode, num_views, rng)
    cache: dict[int, np.ndarray] = {}
    for i in np.unique(indices):
        try:
            with Image.open(files[i]) as im:
                im = im.convert("RGB")
                scale = short_side / min(im.size)
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
                cache[int(i)] = np.asarray(im)
        except OSError as err:
            raise VideoError(f"Frame {files[i]} is not a readable image ({err}).") from err
    return np.stack([np.stack([cache[int(i)] for i in view]) for view in indices])


class VideoDataset(Dataset):
    """Decodes, samples and transforms one video per item; None when the video is unreadable.

    Train items draw their frames and augmentation from a generator seeded by
    (seed, epoch, index); call :meth:`set_epoch` before each epoch's DataLoader iterator.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: ClipTransform,
        num_frames: int,
        *,
        num_views: int = 1,
        short_side: int = 256,
        seed: int = 0,
    ) -> None:
        if not samples:
            raise ConfigError("The dataset has no samples; an empty split cannot be used.")
        self.samples = list(samples)
        self.transform = transform
        self.num_frames = num_frames
        self.num_views = num_views
        self.short_side = short_side
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict | None:
        sample = self.samples[index]
        mode = "train" if self.transform.train else "test"
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.transform.train else None
        try:
            path = Path(sample.path)
            if path.is_dir():
                frames = read_frame_folder(path, self.num_frames, mode, self.num_views, self.short_side, rng)
            else:
                frames = read_clip(
                    path, self.num_frames, mode=mode, num_views=self.num_views, short_side=self.short_side, rng=rng
                ).frames
        except VideoError as err:
            log.warning("Skipping unreadable video %s: %s", sample.path, err)
            return None
        return {"video": self.transform(frames, rng), "label": sample.label, "index": index}


def collate(items: list[dict | None]) -> dict:
    """Stack the readable items; ``skipped`` counts the unreadable ones that were dropped."""
    good = [it for it in items if it is not None]
    batch = {
        "label": torch.tensor([it["label"] for it in good], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in good], dtype=torch.long),
        "skipped": len(items) - len(good),
    }
    batch["video"] = torch.stack([it["video"] for it in good]) if good else torch.empty(0)
    return batch


class ResumableSampler(DistributedSampler):
    """A DistributedSampler that can start an epoch part-way, for exact mid-epoch resume.

    Its order depends only on (seed, epoch), so skipping the first ``start`` samples of this
    rank gives exactly the batches an uninterrupted run would have seen next.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        super().set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return super().__len__() - self.start
