"""Open and validate a video, sample frames TSN-style, and decode only those frames.

A clip of ``T`` frames is drawn the TSN way: the video is cut into ``T`` equal segments and
one frame is taken from each (the centre at test time, a random one at train time). Several
temporal views shift the sample inside every segment evenly.

Decoding uses decord first and PyAV for whatever decord rejects (GIF, files with broken
container metadata, frames decord's index promises but cannot deliver). Both backends seek
to the sampled frames instead of decoding the whole video, and resize inside FFmpeg to the
caller's short side, so memory stays bounded for hour-long or 4K videos.

Limits: every side must be between ``MIN_SIDE`` (16 px, below that there is nothing to
recognise) and ``MAX_SIDE`` (8192 px, DCI 8K) pixels; still images are refused. A file
that ends early (truncated) yields the frames that are really there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import decord
import numpy as np

from kgclip_core.errors import VideoError

logger = logging.getLogger(__name__)

MIN_SIDE = 16
MAX_SIDE = 8192
DEFAULT_FPS = 25.0  # assumed only when a file states no frame rate and has no time stamps
SUPPORTED = "mp4, avi, mov, mkv, webm or an animated gif"


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds; ``width``/``height`` are the stored size, before any resize."""

    path: str
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    backend: str  # "decord" or "pyav"


@dataclass
class Clip:
    """Sampled frames of ``V`` temporal views of ``T`` frames each."""

    frames: np.ndarray  # uint8 [V, T, H, W, 3], RGB
    indices: np.ndarray  # int [V, T], frame numbers in the video
    timestamps: np.ndarray  # float [V, T], seconds from the first frame
    info: VideoInfo


def sample_indices(
    num_frames: int,
    num_segments: int,
    mode: str = "test",
    num_views: int = 1,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """TSN frame indices ``[num_views, num_segments]``, non-decreasing along each view.

    ``mode="test"``: view ``v`` of ``V`` takes the point ``(v + 0.5) / V`` of each segment
    (the centre when ``V == 1``). ``mode="train"``: a uniformly random frame of each segment,
    drawn from ``rng`` (a fresh generator when None). Videos shorter than ``num_segments``
    repeat frames.
    """
    if num_frames < 1 or num_segments < 1 or num_views < 1:
        raise ValueError(
            f"num_frames, num_segments and num_views must be >= 1, "
            f"got {num_frames}, {num_segments}, {num_views}"
        )
    if mode == "test":
        offsets = np.repeat(((np.arange(num_views) + 0.5) / num_views)[:, None], num_segments, 1)
    elif mode == "train":
        offsets = (rng if rng is not None else np.random.default_rng()).random(
            (num_views, num_segments)
        )
    else:
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    segment = num_frames / num_segments
    positions = (np.arange(num_segments)[None, :] + offsets) * segment
    # Rounding can land exactly on num_frames at the end of the last segment.
    return np.minimum(positions.astype(np.int64), num_frames - 1)


def probe_video(path: str | Path) -> VideoInfo:
    """Open and validate a video without decoding its frames; raises :class:`VideoError`."""
    return _open(path, short_side=None).info


def read_clip(
    path: str | Path,
    num_frames: int = 8,
    *,
    mode: str = "test",
    num_views: int = 1,
    short_side: int | None = 256,
    rng: np.random.Generator | None = None,
) -> Clip:
    """Sample and decode ``num_views`` x ``num_frames`` frames of a video.

    Frames are resized so their short side is ``short_side`` (aspect kept; None keeps the
    stored size). See :func:`sample_indices` for ``mode``, ``num_views`` and ``rng``.
    Raises :class:`VideoError` for anything that is not a readable video.
    """
    if short_side is not None and short_side < 1:
        raise ValueError(f"short_side must be >= 1 or None, got {short_side}")
    reader = _open(path, short_side)
    try:
        return _decode_clip(reader, num_frames, mode, num_views, rng)
    except decord.DECORDError as exc:  # decord's index can promise frames it cannot decode
        _log_fallback(reader.info.path, exc)
        reader = _PyAVReader(reader.info.path, reader.info.width, reader.info.height, reader.size)
        return _decode_clip(reader, num_frames, mode, num_views, rng)


def _decode_clip(
    reader: _DecordReader | _PyAVReader,
    num_frames: int,
    mode: str,
    num_views: int,
    rng: np.random.Generator | None,
) -> Clip:
    indices = sample_indices(reader.info.num_frames, num_frames, mode, num_views, rng)
    wanted = np.unique(indices)
    frames, got, times = reader.read(wanted)
    where = np.searchsorted(wanted, indices)
    return Clip(frames[where], got[where], times[where], reader.info)


def _open(path: str | Path, short_side: int | None) -> _DecordReader | _PyAVReader:
    path = _check_file(path)
    width, height = _read_header(path)
    size = _output_size(width, height, short_side)
    try:
        return _DecordReader(path, width, height, size)
    except Exception as exc:  # decord raises DECORDError, RuntimeError or AssertionError
        _log_fallback(path, exc)
    return _PyAVReader(path, width, height, size)


def _log_fallback(path: str, exc: Exception) -> None:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    logger.info("decord could not read %s (%s); using PyAV", path, reason[:200])


def _check_file(path: str | Path) -> str:
    p = Path(path).expanduser()
    if not p.exists():
        raise VideoError(f"Video not found: {p}. Check the path.")
    if p.is_dir():
        raise VideoError(f"{p} is a directory; give the path of one video file ({SUPPORTED}).")
    if not p.is_file():
        raise VideoError(f"{p} is not a regular file; give a video file ({SUPPORTED}).")
    if p.stat().st_size == 0:
        raise VideoError(f"{p} is empty (0 bytes); the upload or copy probably failed.")
    return str(p)


def _read_header(path: str) -> tuple[int, int]:
    """The stored frame size, checked against the limits before anything is decoded."""
    try:
        with av.open(path) as container:
            kind = container.format.name
            videos = container.streams.video
            sizes = [(v.codec_context.width, v.codec_context.height) for v in videos]
    except av.FFmpegError as exc:
        raise VideoError(
            f"{path} is not a readable video ({_guess_problem(path)}; FFmpeg says: {exc}). "
            f"Use a complete {SUPPORTED} file."
        ) from None
    if kind == "image2" or kind.endswith("_pipe"):
        image = kind.removesuffix("_pipe").upper()
        raise VideoError(
            f"{path} is a still image ({image}), not a video. Give a video file "
            f"({SUPPORTED}); GIF animations are supported."
        )
    if not sizes:
        raise VideoError(f"{path} has no video stream (audio only, or no frames at all).")
    width, height = sizes[0]
    if not (MIN_SIDE <= min(width, height) and max(width, height) <= MAX_SIDE):
        raise VideoError(
            f"{path} is {width}x{height} pixels; supported videos have every side between "
            f"{MIN_SIDE} and {MAX_SIDE} pixels. Re-encode it to a usual size "
            "(e.g. ffmpeg -i in.mp4 -vf scale=-2:720 out.mp4)."
        )
    return width, height


def _guess_problem(path: str) -> str:
    with open(path, "rb") as f:
        text = f.read(1024).decode("utf-8", errors="replace")[:-1]  # the read may cut a char
    if "\ufffd" not in text and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "it looks like a text file"
    return "it may be truncated or corrupt"


def _output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    if short_side is None:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class _DecordReader:
    """decord: one index over the file, seeks per frame and resizes while decoding."""

    def __init__(self, path: str, width: int, height: int, size: tuple[int, int]):
        self.size = size
        self._reader = decord.VideoReader(path, ctx=decord.cpu(0), width=size[0], height=size[1])
        n, fps = len(self._reader), float(self._reader.get_avg_fps())
        if not fps > 0:
            raise ValueError(f"frame rate {fps}")
        self.info = VideoInfo(path, n, fps, n / fps, width, height, "decord")
        times = self._reader.get_frame_timestamp(range(n))[:, 0].astype(np.float64)
        # decord's stamps are garbage (-3.7e17) for some AVIs; fall back to a constant rate.
        sane = np.all(np.isfinite(times)) and times[0] >= 0 and np.all(np.diff(times) > 0)
        self._times = times if sane else np.arange(n) / fps

    def read(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._reader.get_batch(wanted.tolist()).asnumpy(), wanted, self._times[wanted]


class _PyAVReader:
    """PyAV: counts frames from the packets (not from headers) and seeks to key frames."""

    def __init__(self, path: str, width: int, height: int, size: tuple[int, int]):
        self.path, self.size = path, size
        with av.open(path) as container:
            stream = container.streams.video[0]
            packets = [
                (p.pts if p.pts is not None else p.dts, p.is_keyframe)
                for p in _packets(container, stream)
                if p.size
            ]
            rate, time_base = stream.average_rate or stream.guessed_rate, stream.time_base
        if not packets:
            raise VideoError(f"{path} contains no video frames.")
        stamps = [s for s, _ in packets]
        # Without time stamps frames can only be counted in order, never seeked to.
        self._sequential = None in stamps or time_base is None
        if self._sequential:
            stamps, time_base = list(range(len(stamps))), 1 / float(rate or DEFAULT_FPS)
        order = np.argsort(stamps, kind="stable")
        self._pts = np.asarray(stamps, np.int64)[order]
        keyframes = np.asarray([k for _, k in packets])[order]
        self._keys = np.empty(0, np.int64) if self._sequential else np.flatnonzero(keyframes)
        self._times = (self._pts - self._pts[0]) * float(time_base)
        n, span = len(stamps), self._times[-1]
        fps = float(rate) if rate else (n - 1) / span if span > 0 else DEFAULT_FPS
        self.info = VideoInfo(path, n, fps, n / fps, width, height, "pyav")

    def read(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        frames, got = [], []
        pos, last, anchor = -1, None, 0
        with av.open(self.path) as container:
            stream = container.streams.video[0]
            decoded = _decode(container, stream)
            for target in wanted:
                k = np.searchsorted(self._keys, target, side="right") - 1
                if k >= 0 and self._keys[k] > pos:  # a key frame ahead: seeking skips work
                    anchor = int(self._keys[k])
                    container.seek(int(self._pts[anchor]), stream=stream, backward=True)
                    decoded = _decode(container, stream)
                for frame in decoded:
                    # Count frames in output order from where decoding (re)started: some AVIs
                    # (packed B-frames) give decoded frames swapped time stamps.
                    pos = self._locate(frame, anchor) if anchor is not None else pos + 1
                    last, anchor = frame, None
                    if pos >= target:
                        break
                if last is None:
                    raise VideoError(f"{self.path}: no frame could be decoded; is it corrupt?")
                if pos < target:
                    logger.warning("%s ends at frame %d, before frame %d", self.path, pos, target)
                w, h = self.size
                frames.append(last.to_ndarray(width=w, height=h, format="rgb24"))
                got.append(pos)
        got = np.minimum(np.asarray(got, np.int64), len(self._pts) - 1)
        return np.stack(frames), got, self._times[got]

    def _locate(self, frame: av.VideoFrame, default: int) -> int:
        """Index of the first frame decoded after a (re)start, from its time stamp."""
        if self._sequential or frame.pts is None:
            return default
        return int(np.searchsorted(self._pts, frame.pts))


def _packets(container: av.container.InputContainer, stream: av.VideoStream):
    """Demuxed packets; a file that breaks off (truncated) just ends early."""
    try:
        yield from container.demux(stream)
    except av.FFmpegError as exc:
        logger.warning("%s: stopped reading at a broken packet (%s)", container.name, exc)


def _decode(container: av.container.InputContainer, stream: av.VideoStream):
    """Decoded frames from the current position; stops at the first undecodable packet."""
    for packet in _packets(container, stream):
        try:
            yield from packet.decode()
        except av.FFmpegError as exc:
            logger.warning("%s: stopped decoding at a corrupt packet (%s)", container.name, exc)
            return
