"""Measure every setting on the stitched videos: one row per (setting, video).

A row holds what the report needs: the video's frames and how many of them the timeline labels
with their true action (each frame by the segment covering its centre), the true boundaries and
the found ones (in seconds), the clip-level hits of the same model on the very clips the video
was stitched from (each clip's stretch of the video, ``Predictor.predict(span=...)``), and the
timeline's cost (windows, frames decoded, seconds).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from kgclip_core.prediction import Timeline
from kgclip_core.predictor import Predictor
from kgclip_core.synth.render import SynthConfig
from kgclip_core.synth.stitch import write_stitched
from kgclip_core.timeline import TimelineConfig, timeline
from experiments import jsonl
from experiments.timeline.common import CHECKPOINT, COUNT, ROWS, SEED, SETTINGS, STITCH, VIDEOS
from experiments.weights import digest

log = logging.getLogger(__name__)


def measure(work: Path) -> None:
    """Append the rows of every setting not measured yet with these weights."""
    predictor = Predictor.from_checkpoint(CHECKPOINT, device="cpu")
    truths = write_stitched(work / "stitched", COUNT, SEED, STITCH)
    weights = digest(CHECKPOINT / "model.safetensors")
    clip_level: dict[str, tuple[int, int]] = {}  # the same for every setting: measured once a video
    for window, stride in SETTINGS:
        key = {"weights": weights, "seed": SEED, "window": window, "stride": stride}
        if any(all(r.get(k) == v for k, v in key.items()) for r in jsonl.read(ROWS / VIDEOS)):
            log.info("window %g s, stride %g s: measured already", window, stride)
            continue
        for truth in truths:
            path = work / "stitched" / truth["path"]
            start = time.perf_counter()
            line = timeline(predictor, path, cfg=TimelineConfig(window, stride))
            seconds = time.perf_counter() - start
            if truth["path"] not in clip_level:
                clip_level[truth["path"]] = _clip_hits(predictor, path, truth)
            hits, clips = clip_level[truth["path"]]
            jsonl.append(ROWS / VIDEOS, {
                **key, "video": truth["path"], "duration": truth["duration"], "frames": truth["num_frames"],
                "frames_right": _frame_hits(line, truth), "boundaries": truth["boundaries"],
                "found": [s.start for s in line.segments[1:]],
                "segments": [[s.class_name, round(s.start, 3), round(s.end, 3)] for s in line.segments],
                "clips": clips, "clips_right": hits, "windows": len(line.windows),
                "frames_decoded": line.frames_decoded, "seconds": round(seconds, 3)})
        log.info("window %g s, stride %g s: %d videos", window, stride, len(truths))


def _frame_hits(line: Timeline, truth: dict) -> int:
    """The video's frames the timeline labels with their true action (by the time of each frame's centre)."""
    fps = truth["fps"]
    return sum(line.segment_at((f + 0.5) / fps).class_name == seg["action"]
               for seg in truth["segments"] for f in range(seg["start_frame"], seg["end_frame"]))


def _clip_hits(predictor: Predictor, path: Path, truth: dict) -> tuple[int, int]:
    """(right, all) of the model's top-1 on each clip the video was stitched from, read from the video."""
    length = SynthConfig().num_frames / truth["fps"]
    spans = [(seg["action"], seg["start"] + c * length) for seg in truth["segments"] for c in range(seg["clips"])]
    right = sum(predictor.predict(path, top_k=1, span=(t, t + length)).class_names[0] == action
                for action, t in spans)
    return right, len(spans)
