"""Write a synthetic data set to disk: videos, split lists, labels and ground truth.

Layout of ``out_dir``::

    videos/<class_slug>/<class_slug>_<k>.mp4   one clip per (class, k)
    train.txt, val.txt                          "videos/... <label index>" (mmaction2 style)
    labels.csv                                  "id,name", one row per class
    ground_truth.jsonl                          one JSON object per clip (see render.py),
                                                plus "path", "label" and "split"
    meta.json                                   label set, seed, config, colours

Each clip's seed is derived from (data-set seed, class name, k), so a clip does not change
when other classes are added or removed, and the whole set is reproducible from its seed.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

from kgclip_core.errors import ConfigError
from kgclip_core.synth.actions import Action, get_action, label_set_actions
from kgclip_core.synth.figure import OBJECT_COLOURS, PART_COLOURS, PART_KEYS
from kgclip_core.synth.render import SynthConfig, render_clip

log = logging.getLogger(__name__)

# libx264 at this quality keeps the part colours inside thick limbs close to their RGB
# values after 4:2:0 chroma subsampling; mpeg4 is the fallback where x264 is missing.
CODECS = ("h264", "mpeg4")
H264_CRF = 16
MPEG4_QSCALE = 2


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`write_dataset` wrote."""

    out_dir: Path
    label_set: str
    classes: tuple[str, ...]
    num_train: int
    num_val: int
    codec: str


def slug(name: str) -> str:
    """File-system-safe form of a class name (``wave right hand`` -> ``wave_right_hand``)."""
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def clip_seed(seed: int, action: str, index: int) -> int:
    """The seed of clip ``index`` of ``action`` in a data set seeded with ``seed``."""
    entropy = [int(seed), zlib.crc32(action.encode("utf-8")), int(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def pick_codec() -> str:
    """The first of :data:`CODECS` this PyAV build can encode."""
    for name in CODECS:
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
    raise ConfigError("This PyAV/FFmpeg build can encode neither h264 nor mpeg4; install a full PyAV wheel.")


def write_video(path: Path, frames: np.ndarray, fps: int, codec: str | None = None) -> None:
    """Encode uint8 RGB frames [T, H, W, 3] to ``path`` (mp4) with PyAV."""
    codec = codec or pick_codec()
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if codec == "h264":
            # One thread and no B-frames keep x264's output byte-identical from run to run
            # (its adaptive B-frame decision is not); without frame reordering, decoders that
            # seek (decord) also land on the exact frames asked for.
            stream.options = {"crf": str(H264_CRF), "preset": "veryfast", "threads": "1", "bf": "0"}
        else:
            stream.codec_context.qscale = MPEG4_QSCALE
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _resolve_classes(classes: str | Sequence[str]) -> tuple[str, tuple[Action, ...]]:
    if isinstance(classes, str):
        return classes, label_set_actions(classes)
    return "custom", tuple(get_action(name) for name in classes)


def write_dataset(out_dir: str | Path, per_class: int, seed: int, classes: str | Sequence[str] = "synthetic",
                  cfg: SynthConfig | None = None, val_fraction: float = 0.25,
                  codec: str | None = None) -> DatasetSummary:
    """Render ``per_class`` clips of every class and write the data set to ``out_dir``.

    ``classes`` is a label set name (``synthetic``, ``synthetic_novel``) or a list of
    action names; label indices follow its order. The first ``per_class * val_fraction``
    clips (rounded half up) of every class go to ``val.txt``, the rest to ``train.txt``.
    """
    if per_class < 1:
        raise ConfigError(f"--per-class must be at least 1, got {per_class}.")
    if not 0.0 <= val_fraction <= 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1, got {val_fraction}.")
    cfg = cfg or SynthConfig()
    codec = codec or pick_codec()
    label_set, actions = _resolve_classes(classes)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"Cannot create the output folder {out}: {err.strerror or err}.") from None
    num_val = int(per_class * val_fraction + 0.5)  # half up: 2 clips at 0.25 -> 1 val clip
    lists: dict[str, list[str]] = {"train": [], "val": []}
    with open(out / "ground_truth.jsonl", "w", encoding="utf-8") as gt_file:
        for label, action in enumerate(actions):
            log.info("rendering %d clips of %r", per_class, action.name)
            for k in range(per_class):
                rel = f"videos/{slug(action.name)}/{slug(action.name)}_{k:03d}.mp4"
                frames, truth = render_clip(action, clip_seed(seed, action.name, k), cfg)
                write_video(out / rel, frames, cfg.fps, codec)
                split = "val" if k < num_val else "train"
                lists[split].append(f"{rel} {label}")
                gt_file.write(json.dumps({"path": rel, "label": label, "split": split, **truth}) + "\n")
    for split, lines in lists.items():
        (out / f"{split}.txt").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    rows = ["id,name"] + [f"{i},{a.name}" for i, a in enumerate(actions)]
    (out / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    meta = {
        "label_set": label_set,
        "classes": [a.name for a in actions],
        "seed": int(seed),
        "per_class": per_class,
        "val_fraction": val_fraction,
        "codec": codec,
        "config": asdict(cfg),
        "part_keys": list(PART_KEYS),
        "part_colours": {k: list(v) for k, v in PART_COLOURS.items()},
        "object_colours": {k: list(v) for k, v in OBJECT_COLOURS.items()},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return DatasetSummary(out, label_set, tuple(a.name for a in actions),
                          len(lists["train"]), len(lists["val"]), codec)


def read_ground_truth(out_dir: str | Path) -> list[dict]:
    """The per-clip ground truth of a data set written by :func:`write_dataset`."""
    path = Path(out_dir) / "ground_truth.jsonl"
    if not path.is_file():
        raise ConfigError(f"No ground_truth.jsonl in {out_dir}; write the data set with `kgclip synth` first.")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
