"""Long synthetic videos stitched from fresh clips of different actions, their boundaries known:
the ground truth of a timeline (``kgclip_core.timeline``).

A stitched video is a run of segments, each one action shown by one to three fresh clips of it
one after the other (so segments last 2.5 to 7.5 s at the default clip length, and boundaries
fall at no fixed period); consecutive segments show different actions. Its ground truth lists
each segment's action, how many clips show it (each ``SynthConfig.num_frames`` long), its first
and last frame (exclusive) and seconds, and the boundaries between segments in seconds.
Everything is drawn from the seed.

Layout of ``out_dir`` (:func:`write_stitched`)::

    stitched_<k>.mp4    one video per k
    ground_truth.jsonl  one JSON object per video: path, fps, num_frames, duration, segments, boundaries
    meta.json           the settings it was written with (a folder with other settings is rewritten)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kgclip_core.errors import ConfigError
from kgclip_core.synth.actions import label_set_actions
from kgclip_core.synth.dataset import clip_seed, read_ground_truth, write_video
from kgclip_core.synth.render import SynthConfig, render_clip

# A video is held in memory twice while it is written (its clips and their concatenation): 200
# segments of 7.5 s at 112 px come to 1.8 GB.
MAX_SEGMENTS = 200


@dataclass(frozen=True)
class StitchConfig:
    """How stitched videos are made: ``segments`` actions a video, each shown by ``min_clips`` to
    ``max_clips`` consecutive fresh clips, of the ``label_set``'s actions."""

    segments: int = 6
    min_clips: int = 1
    max_clips: int = 3
    label_set: str = "synthetic"

    def __post_init__(self) -> None:
        if not 2 <= self.segments <= MAX_SEGMENTS:
            raise ConfigError(f"A stitched video needs 2 to {MAX_SEGMENTS} segments, got {self.segments}.")
        if not 1 <= self.min_clips <= self.max_clips:
            raise ConfigError(f"Clips per segment must satisfy 1 <= min <= max, got {self.min_clips}, "
                              f"{self.max_clips}.")


def stitched_video(path: Path, seed: int, cfg: StitchConfig | None = None, synth: SynthConfig | None = None) -> dict:
    """Render and write one stitched video to ``path``; its ground truth (see the module docstring)."""
    cfg, synth = cfg or StitchConfig(), synth or SynthConfig()
    actions = [a.name for a in label_set_actions(cfg.label_set)]
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    while len(chosen) < cfg.segments:  # consecutive segments show different actions
        name = actions[int(rng.integers(len(actions)))]
        if not chosen or name != chosen[-1]:
            chosen.append(name)
    parts, segments, frame = [], [], 0
    for k, action in enumerate(chosen):
        clips = int(rng.integers(cfg.min_clips, cfg.max_clips + 1))
        for c in range(clips):
            # A clip's seed from the video's seed, its segment and its place: fresh, and reproducible.
            parts.append(render_clip(action, clip_seed(seed, action, k * cfg.max_clips + c), synth)[0])
        length = clips * synth.num_frames
        segments.append({"action": action, "clips": clips, "start_frame": frame, "end_frame": frame + length,
                         "start": frame / synth.fps, "end": (frame + length) / synth.fps})
        frame += length
    write_video(path, np.concatenate(parts), synth.fps)
    return {"path": path.name, "seed": seed, "fps": synth.fps, "num_frames": frame, "duration": frame / synth.fps,
            "segments": segments, "boundaries": [s["start"] for s in segments[1:]]}


def write_stitched(out_dir: str | Path, count: int, seed: int, cfg: StitchConfig | None = None) -> list[dict]:
    """Write ``count`` stitched videos into ``out_dir`` (video ``k`` seeded from ``seed`` and ``k``),
    or reuse them when the folder holds exactly these; their ground truth, in order."""
    cfg = cfg or StitchConfig()
    out = Path(out_dir)
    wanted = {"count": count, "seed": seed, "config": asdict(cfg), "synth": asdict(SynthConfig())}
    meta = out / "meta.json"
    if meta.is_file() and json.loads(meta.read_text(encoding="utf-8")) == json.loads(json.dumps(wanted)):
        return read_ground_truth(out)
    out.mkdir(parents=True, exist_ok=True)
    truths = [stitched_video(out / f"stitched_{k:03d}.mp4", clip_seed(seed, "stitched", k), cfg) for k in range(count)]
    (out / "ground_truth.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truths), encoding="utf-8")
    meta.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    return truths
