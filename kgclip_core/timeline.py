"""What happens when in a long clip: windows over the whole clip, each classified alone, merged
into segments.

A window is ``window_s`` seconds of the clip sampled as a short clip is (``num_frames`` frames,
TSN segment centres, ``video.span_indices``), every ``stride_s`` seconds from the start; the last
ends at most at the clip's end (a clip shorter than a window is one window over all of it). The
clip is decoded once: the frames of all windows are read in time order, a batch at a time,
each frame once however many windows share it (with the defaults, each window adds two new
frames to the six it shares with the one before), and each batch goes through the image tower
together. The windows whose frames a batch completes are scored as soon as it is encoded, in
one pass of the model's heads (each window's scores stay what it would get alone: see
``KGClipModel.scores_videos_apart``), and the features no window still needs are dropped, so
memory stays that of a batch and its windows whatever the clip's length. Each window gets its top actions, the concepts of its top action marked against its
frames (``evidence``) and "not sure" as a prediction does (``Predictor.fit``); its scores are
those ``Predictor.predict(clip, span=(start, end))`` gives.

Consecutive windows with the same top action are merged into a :class:`Segment`. Each window
owns the stretch of the clip around its centre, half a stride each side (the first from the
clip's start, the last to its end), so a boundary falls halfway between the centres of the
last window of one action and the first of the next.

Limits (docs/LIMITS.md), checked once the clip is opened, before any frame is decoded: the
clip at most ``MAX_DURATION_S`` long and at most ``MAX_WINDOWS`` windows; a server's request
budget (``Predictor.limits``) is checked between batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np
import torch

from kgclip_core.budget import CancelToken, Deadline
from kgclip_core.class_cache import progress_within
from kgclip_core.errors import BudgetError, ConfigError
from kgclip_core.evidence import concepts_of, evidence_items, mark_concepts
from kgclip_core.labels import LabelSet
from kgclip_core.model.kgclip import ClassFeatures, ClassProgress, ScoreOutput, VideoFeatures
from kgclip_core.prediction import Prediction, Segment, Timeline, TimelineWindow
from kgclip_core.predictor import RANDOM_WEIGHTS_WARNING, Predictor
from kgclip_core.video import FrameSource, VideoInfo, span_indices

WINDOW_S = 2.0  # about an action's cycle; the demo model learned on clips of 2.5 s
STRIDE_S = 0.5  # with 8 frames a window, 2 of every window's frames are new: a quarter of a clip's cost
MIN_WINDOW_S, MAX_WINDOW_S = 0.5, 30.0
MIN_STRIDE_S = 0.1
MAX_DURATION_S = 20 * 60.0  # the longest clip: 20 minutes
MAX_WINDOWS = 2400  # 20 minutes at the default stride
BATCH_FRAMES = 32  # frames decoded and encoded together

# Called with (seconds of the clip done, seconds in all).
TimelineProgress = Callable[[float, float], None]


@dataclass(frozen=True)
class TimelineConfig:
    """A timeline's windows: ``window_s`` seconds long, one every ``stride_s`` seconds. Windows share
    frames when the stride is a whole number of a window's parts (``window_s / num_frames``: the
    defaults, 0.5 s = 2 x 2 s / 8); other strides work, at up to a clip's cost per window."""

    window_s: float = WINDOW_S
    stride_s: float = STRIDE_S

    def __post_init__(self) -> None:
        if not (isinstance(self.window_s, (int, float)) and MIN_WINDOW_S <= self.window_s <= MAX_WINDOW_S):
            raise ConfigError(f"A timeline's window must be {MIN_WINDOW_S:g} to {MAX_WINDOW_S:g} seconds long, "
                              f"got {self.window_s!r}.")
        if not (isinstance(self.stride_s, (int, float)) and MIN_STRIDE_S <= self.stride_s <= self.window_s):
            raise ConfigError(f"A timeline's stride must be {MIN_STRIDE_S:g} seconds to the window's length "
                              f"({self.window_s:g} s; longer would skip parts of the clip), got {self.stride_s!r}.")

    def spans(self, duration: float) -> list[tuple[float, float]]:
        """The windows' (start, end) in seconds over a clip of ``duration`` seconds."""
        window = min(self.window_s, duration)
        count = 1 + max(0, math.floor((duration - window) / self.stride_s + 1e-9))
        return [(i * self.stride_s, i * self.stride_s + window) for i in range(count)]


def check_limits(info: VideoInfo, cfg: TimelineConfig) -> list[tuple[float, float]]:
    """The windows of the clip ``info`` describes; BudgetError past the longest clip or the most windows."""
    if info.duration > MAX_DURATION_S:
        raise BudgetError(f"This clip is {_clock(info.duration)} long; a timeline covers at most "
                          f"{_clock(MAX_DURATION_S)}. Cut it into parts (e.g. ffmpeg -i in.mp4 -t "
                          f"{MAX_DURATION_S:.0f} -c copy part1.mp4).")
    spans = cfg.spans(info.duration)
    if len(spans) > MAX_WINDOWS:
        raise BudgetError(f"A stride of {cfg.stride_s:g} s makes {len(spans)} windows over this clip; at most "
                          f"{MAX_WINDOWS} are allowed: use a longer stride (at least "
                          f"{info.duration / MAX_WINDOWS:.2f} s) or a shorter clip.")
    return spans


@torch.no_grad()
def timeline(predictor: Predictor, video_path: str | Path, labels: str | Sequence[str] | LabelSet | None = None,
             top_k: int | None = None, cfg: TimelineConfig | None = None,
             progress: TimelineProgress | None = None, class_progress: ClassProgress | None = None,
             cancel: CancelToken | None = None) -> Timeline:
    """The timeline of a clip: its windows, each classified alone, and their segments.

    ``labels`` and ``top_k`` as in ``Predictor.predict``; ``progress(done, total)`` follows the
    seconds of the clip done, ``class_progress`` the texts embedded when the label set is new;
    ``cancel`` ends the work at the next batch (Cancelled). Raises VideoError for a bad file and
    BudgetError past the limits (the module's docstring).
    """
    cfg = cfg or TimelineConfig()
    label_set, top_k, deadline = predictor.start_request(labels, top_k, cancel)
    source = FrameSource(video_path, predictor.cfg.short_side)
    info = source.info
    spans = check_limits(info, cfg)
    per_window = [span_indices(info, start, end, predictor.cfg.num_frames) for start, end in spans]
    frames = np.unique(np.concatenate(per_window))  # the frame numbers any window reads, each once
    positions = [np.searchsorted(frames, w) for w in per_window]
    _, classes = predictor.classes(label_set, progress_within(deadline, class_progress))
    windows = []
    buffer, offset = None, 0  # the encoded frames still needed, from frame position ``offset`` on
    for batch in range(0, len(frames), BATCH_FRAMES):
        _check_time(deadline, spans[len(windows)][0], info.duration)
        pixels, _, _ = source.read(frames[batch:batch + BATCH_FRAMES])
        encoded = predictor.model.encode_video(predictor.backbone.preprocess(pixels)[None])
        buffer = encoded if buffer is None else _joined(buffer, encoded)
        done = batch + len(pixels)
        ready = len(windows)
        while ready < len(spans) and positions[ready][-1] < done:
            ready += 1
        windows += _windows(predictor, [_picked(buffer, positions[w] - offset) for w in range(len(windows), ready)],
                            classes, label_set, top_k, spans[len(windows):ready],
                            [frames[positions[w]] for w in range(len(windows), ready)])
        if len(windows) < len(spans):  # drop what no window left needs
            keep = int(positions[len(windows)][0])
            buffer, offset = _picked(buffer, np.arange(keep - offset, done - offset)), keep
        if progress is not None:
            progress(windows[-1].end if windows else 0.0, info.duration)
    warnings = [RANDOM_WEIGHTS_WARNING] if predictor.backbone.random_weights else []
    if info.crop_note:
        warnings.append(info.crop_note)
    return Timeline(windows, segments_of(windows, info.duration), min(cfg.window_s, info.duration), cfg.stride_s,
                    predictor.cfg.num_frames, len(frames), label_set.name, info, predictor.model_name,
                    predictor.backbone.random_weights, warnings)


def segment_prediction(predictor: Predictor, video_path: str | Path, line: Timeline, segment: int,
                       labels: str | Sequence[str] | LabelSet | None = None, top_k: int | None = None,
                       progress: ClassProgress | None = None, cancel: CancelToken | None = None) -> Prediction:
    """The full prediction, with every explanation, of segment ``segment``'s surest window; ``labels``
    must be those the timeline was made with; ``progress`` and ``cancel`` as in ``Predictor.predict``."""
    if not 0 <= segment < len(line.segments):
        raise ConfigError(f"This timeline has segments 0 to {len(line.segments) - 1}, not {segment}.")
    window = line.windows[line.segments[segment].best_window]
    return predictor.predict(video_path, labels, top_k, progress, span=(window.start, window.end), cancel=cancel)


def segments_of(windows: list[TimelineWindow], duration: float) -> list[Segment]:
    """Consecutive windows with the same top action merged, each window owning the stretch around
    its centre (see the module's docstring)."""
    centres = [(w.start + w.end) / 2 for w in windows]
    cuts = [0.0, *((a + b) / 2 for a, b in zip(centres, centres[1:])), duration]
    segments, first = [], 0
    for name, run in groupby(range(len(windows)), key=lambda i: windows[i].class_names[0]):
        members = list(run)
        scores = [windows[i].scores[0] for i in members]
        unsure = sum(windows[i].unsure for i in members)
        segments.append(Segment(
            start=cuts[first], end=cuts[first + len(members)], label=windows[members[0]].labels[0], class_name=name,
            windows=members, score=float(np.mean(scores)), unsure=2 * unsure > len(members),
            best_window=members[int(np.argmax(scores))]))
        first += len(members)
    return segments


def _windows(predictor: Predictor, videos: list[VideoFeatures], classes: ClassFeatures, label_set: LabelSet,
             top_k: int, spans: list[tuple[float, float]], frame_numbers: list[np.ndarray]) -> list[TimelineWindow]:
    """Windows scored and explained as ``Predictor.predict`` does a clip (their scores, marks, fit):
    in one pass of the model's heads where the model scores each video apart from the others of
    its batch (most of a window's cost with every head on is the heads' small products, which
    a batch shares), else one by one."""
    model = predictor.model
    if not videos:
        return []
    # No maps (explain=False): a segment's explanation is its surest window's own prediction.
    if model.scores_videos_apart:
        scored = model.score(_stacked(videos), classes, explain=False)
        outs = [scored.item(i) for i in range(len(videos))]
    else:
        outs = [model.score(video, classes, explain=False) for video in videos]
    return [_window(predictor, video, out, classes, label_set, top_k, span, numbers)
            for video, out, span, numbers in zip(videos, outs, spans, frame_numbers)]


def _window(predictor: Predictor, video: VideoFeatures, out: ScoreOutput, classes: ClassFeatures,
            label_set: LabelSet, top_k: int, span: tuple[float, float], frame_numbers: np.ndarray) -> TimelineWindow:
    """One window from its frames (``video``) and their scoring (``out``), both batches of one."""
    top = out.logits[0].softmax(dim=-1).topk(min(top_k, len(label_set)))
    indices = top.indices.tolist()
    marks = mark_concepts(video, out, classes, predictor.detector)
    fit, unsure = predictor.fit(marks, classes, indices[0])
    return TimelineWindow(
        start=span[0], end=span[1], labels=[label_set.display_names[i] for i in indices],
        class_names=[label_set.classes[i] for i in indices], scores=top.values.tolist(),
        frame_indices=frame_numbers.tolist(), fit=fit, unsure=unsure,
        evidence=evidence_items(marks, classes, concepts_of(classes, indices[0])))


def _picked(video: VideoFeatures, positions: np.ndarray) -> VideoFeatures:
    """The frames at ``positions`` of a one-clip VideoFeatures (everything in it is per frame)."""
    index = torch.as_tensor(positions, dtype=torch.long, device=video.frames.device)
    pick = (lambda x: None if x is None else x[:, index])  # noqa: E731
    return VideoFeatures(pick(video.frames), pick(video.patches), video.grid, pick(video.frame_mask),
                         pick(video.regions), pick(video.region_maps))


def _joined(a: VideoFeatures, b: VideoFeatures) -> VideoFeatures:
    """Two one-clip VideoFeatures' frames one after the other."""
    return _concatenated([a, b], dim=1)


def _stacked(videos: list[VideoFeatures]) -> VideoFeatures:
    """One-clip VideoFeatures of as many frames each as a batch of clips."""
    return _concatenated(videos, dim=0)


def _concatenated(videos: list[VideoFeatures], dim: int) -> VideoFeatures:
    """VideoFeatures joined along ``dim`` (0: clips, 1: frames); they share their patch grid."""
    cat = (lambda xs: None if xs[0] is None else torch.cat(xs, dim=dim))  # noqa: E731
    parts = lambda name: [getattr(v, name) for v in videos]  # noqa: E731
    return VideoFeatures(cat(parts("frames")), cat(parts("patches")), videos[0].grid, cat(parts("frame_mask")),
                         cat(parts("regions")), cat(parts("region_maps")))


def _check_time(deadline: Deadline | None, done: float, duration: float) -> None:
    """BudgetError once a server's request budget is spent, saying how far the timeline got; the
    deadline's own check for a cancelled request."""
    if deadline is None:
        return
    if deadline.remaining() < 0:
        raise BudgetError(f"The timeline ran out of this server's {deadline.seconds:.0f} s budget at "
                          f"{_clock(done)} of the clip's {_clock(duration)}. Try a shorter clip, or run "
                          "`kgclip predict CLIP --timeline` on your own machine (no budget there).")
    deadline.check("making the timeline")


def _clock(seconds: float) -> str:
    """Seconds as m:ss."""
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
