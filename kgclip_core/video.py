"""Open and validate a video, sample frames TSN-style, and decode only those frames.

A clip of ``T`` frames is drawn the TSN way: the video is cut into ``T`` equal segments and
one frame is taken from each (the centre at test time, a random one at train time). Several
temporal views shift the sample inside every segment evenly.

A stretch of a video (``span``, in seconds) is sampled the same way within that stretch: a long
clip's timeline (``kgclip_core.timeline``) reads its windows so, through a :class:`FrameSource`
that decodes a batch of frame numbers at a time.

Decoding uses decord first and PyAV for whatever decord rejects (GIF, files with broken
container metadata, frames decord's index promises but cannot deliver). Both backends seek
to the sampled frames instead of decoding the whole video, and resize inside FFmpeg to the
caller's short side, so memory stays bounded for hour-long or 4K videos.

Frames come back upright: the file's display matrix (the rotation, and any mirroring, a phone
records for portrait video) is read with PyAV from the first frame and applied with numpy.
decord 0.6 applies only the rotation part itself, and then reads its size arguments as the
rotated size, so a file with a display matrix (or with several video streams, of which decord
picks its own) is decoded with PyAV.

Limits: every stored side must be between ``MIN_SIDE`` (16 px, below that there is nothing
to recognise) and ``MAX_SIDE`` (8192 px, DCI 8K) pixels. A frame more elongated than
``MAX_ASPECT`` (4:1) is centre-cropped to 4:1 (the model's preprocessing keeps only a centre
square anyway) and ``VideoInfo.crop`` says so; such a frame is decoded at most at its stored
size and enlarged only after the crop. So a decoded frame never exceeds ``MAX_SIDE`` x
``short_side`` pixels and a returned one ``4 * short_side`` x ``short_side``, whatever the
file's shape. Still pictures are refused: image files, a cover picture (an audio file's
attached picture) as the only video stream, and a stream of fewer than ``MIN_FRAMES`` (2)
frames, such as a one-frame GIF. A file that ends early (truncated) yields the frames that
are really there.

Decoding cost is bounded before any frame is decoded: a decoder works on every stored pixel of
every frame it reads, and reaching a sampled frame means reading from the key frame before it
(a GIF has one, its first frame, and paints every later frame on its full canvas). So the
frames a read will decode are counted from the container's key-frame index, and a read whose
stored pixels x frames decoded exceed ``MAX_DECODE_PIXELS`` (20 G) is refused with a
:class:`VideoError`: 3,000 one-pixel frames on an 8192x8192 canvas (a 69 kB GIF, 201 G) are,
a 4K clip with a key frame every 250 frames is not (at most 8 x 250 x 8.3 M = 16.6 G).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import decord
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

from kgclip_core.errors import VideoError

logger = logging.getLogger(__name__)

MIN_SIDE = 16
MAX_SIDE = 8192
MAX_ASPECT = 4  # long side / short side of the frames returned; more elongated ones are centre-cropped
MIN_FRAMES = 2  # fewer is a still picture, whatever the container
# Stored pixels x frames decoded by one read (docs/LIMITS.md): the GIF bomb of issue 31 (201 G)
# took 43 s of one core to decode; an H.264 clip at the cap takes about as long.
MAX_DECODE_PIXELS = 20_000_000_000
DEFAULT_FPS = 25.0  # assumed only when a file states no frame rate and has no time stamps
SUPPORTED = "mp4, avi, mov, mkv, webm or an animated gif"
# File types offered for upload: FFmpeg (under decord and PyAV) reads them all; browsers play
# few of them, which is kgclip_core.video_out's business.
EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".gif", ".mpg", ".mpeg", ".wmv", ".flv",
              ".3gp", ".ogv", ".ts", ".mts")
_STILL = av.stream.Disposition.attached_pic | av.stream.Disposition.still_image
_UPRIGHT = (False, False, False)


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds; ``width``/``height`` are the size as displayed (the stored size
    turned by ``rotation``), before any crop or resize."""

    path: str
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    backend: str  # "decord" or "pyav"
    rotation: int = 0  # degrees counter-clockwise the stored frames were turned to stand upright
    mirrored: bool = False  # the file's display matrix also mirrors them
    crop: tuple[int, int] | None = None  # (width, height) of the centre kept of a too elongated frame

    @property
    def crop_note(self) -> str | None:
        """A sentence for people when part of every frame was cut off, else None."""
        if self.crop is None:
            return None
        return (
            f"The video is {self.width}x{self.height} pixels, more elongated than {MAX_ASPECT}:1: "
            f"only the centre {self.crop[0]}x{self.crop[1]} pixels of each frame were used."
        )


@dataclass
class Clip:
    """Sampled frames of ``V`` temporal views of ``T`` frames each."""

    frames: np.ndarray  # uint8 [V, T, H, W, 3], RGB, upright
    indices: np.ndarray  # int [V, T], frame numbers in the video
    timestamps: np.ndarray  # float [V, T], seconds from the first frame
    info: VideoInfo


@dataclass(frozen=True)
class _Header:
    """The video stream as the container describes it, read before any frame is sampled."""

    path: str
    stream: int  # index among the container's video streams
    decord_ok: bool  # decord reads this stream as PyAV does (see the module docstring)
    width: int  # stored size
    height: int
    rotation: int
    orient: tuple[bool, bool, bool]  # transpose, flip rows, flip columns: stored -> upright

    @property
    def crop(self) -> tuple[int, int] | None:
        """The centre (width, height) kept of a stored frame more elongated than MAX_ASPECT."""
        w, h = self.width, self.height
        keep = MAX_ASPECT * min(w, h)
        if max(w, h) <= keep:
            return None
        return (keep, h) if w > h else (w, keep)

    def info(self, num_frames: int, fps: float, backend: str) -> VideoInfo:
        """The stream's VideoInfo, with every size as displayed."""
        transpose, flip_rows, flip_cols = self.orient
        width, height = (self.height, self.width) if transpose else (self.width, self.height)
        crop = self.crop[::-1] if self.crop and transpose else self.crop
        mirrored = transpose ^ flip_rows ^ flip_cols  # an odd number of reflections
        return VideoInfo(self.path, num_frames, fps, num_frames / fps, width, height, backend,
                         self.rotation, mirrored, crop)


@dataclass(frozen=True)
class _Plan:
    """How a stored frame becomes a returned one: decoded at ``decode`` size, its centre
    ``keep`` pixels kept, resized to ``size``, then turned upright. Sizes are (width, height)
    in stored orientation."""

    decode: tuple[int, int]
    keep: tuple[int, int]
    size: tuple[int, int]
    orient: tuple[bool, bool, bool]


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
    """Open and validate a video, decoding only its first frame (for the display matrix);
    raises :class:`VideoError`."""
    return _open(path, short_side=None)[0].info


def span_indices(info: VideoInfo, start_s: float, end_s: float, num_segments: int) -> np.ndarray:
    """TSN test sampling of the stretch [start_s, end_s) seconds of a video: the frame numbers
    [num_segments] shown at the centres of its ``num_segments`` equal parts.

    Centres are taken in time, not in frame numbers rounded first, so stretches that start a
    whole number of parts apart share their frames exactly, whatever the frame rate (a
    timeline's overlapping windows, ``kgclip_core.timeline``).
    """
    centres = start_s + (np.arange(num_segments) + 0.5) * (end_s - start_s) / num_segments
    # Rounded before the floor: a centre computed two ways (0.5 + 0.125, 0.625) lands on one frame.
    return np.clip(np.floor(np.round(centres * info.fps, 6)).astype(np.int64), 0, info.num_frames - 1)


def read_clip(
    path: str | Path,
    num_frames: int = 8,
    *,
    mode: str = "test",
    num_views: int = 1,
    short_side: int | None = 256,
    rng: np.random.Generator | None = None,
    span: tuple[float, float] | None = None,
) -> Clip:
    """Sample and decode ``num_views`` x ``num_frames`` upright frames of a video.

    Frames are resized so their short side is ``short_side`` (aspect kept; None keeps the
    stored size), after a centre crop to ``MAX_ASPECT`` for more elongated videos. See
    :func:`sample_indices` for ``mode``, ``num_views`` and ``rng``. ``span`` (start, end) in
    seconds samples that stretch of the video only, one test view (:func:`span_indices`), as a
    timeline's window does. Raises :class:`VideoError` for anything that is not a readable video.
    """
    if span is not None and (mode, num_views) != ("test", 1):
        raise ValueError(f"a span is sampled in test mode with one view, not {mode!r} with {num_views}")
    source = FrameSource(path, short_side)

    def choose(info: VideoInfo) -> np.ndarray:
        if span is not None:
            return span_indices(info, *span, num_frames)[None]
        return sample_indices(info.num_frames, num_frames, mode, num_views, rng)

    while True:
        info = source.info
        indices = choose(info)
        wanted = np.unique(indices)
        frames, got, times = source.read(wanted)
        if source.info is info:  # else decord failed, and PyAV counted the frames afresh: sample again
            where = np.searchsorted(wanted, indices)
            return Clip(frames[where], got[where], times[where], info)


class FrameSource:
    """An opened, validated video whose frames are decoded on request, in as many calls as the
    caller likes: a long clip can be read a batch of frames at a time, its memory bounded by the
    batch. Raises :class:`VideoError` for anything that is not a readable video."""

    def __init__(self, path: str | Path, short_side: int | None = 256) -> None:
        if short_side is not None and short_side < 1:
            raise ValueError(f"short_side must be >= 1 or None, got {short_side}")
        self._reader, self._plan = _open(path, short_side)

    @property
    def info(self) -> VideoInfo:
        """What the video holds (its backend becomes "pyav" once decord has failed on it)."""
        return self._reader.info

    def read(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The frames [N, H, W, 3] (upright, cropped and resized as the short side asks), frame
        numbers and times in seconds of the distinct, increasing frame numbers ``wanted``; refused
        before decoding when it would cost more than ``MAX_DECODE_PIXELS`` (:func:`check_decode_cost`)."""
        check_decode_cost(self._reader.header, frames_to_decode(wanted, self._reader.keys))
        try:
            frames, got, times = self._reader.read(wanted)
        except decord.DECORDError as exc:  # decord's index can promise frames it cannot decode
            _log_fallback(self._reader.info.path, exc)
            self._reader = _PyAVReader(self._reader.header, self._plan.decode)
            frames, got, times = self._reader.read(wanted)
        return _finish(frames, self._plan), got, times


def _open(path: str | Path, short_side: int | None) -> tuple[_DecordReader | _PyAVReader, _Plan]:
    header = _read_header(_check_file(path))
    plan = _plan(header, short_side)
    reader = _reader(header, plan)
    n = reader.info.num_frames
    if n < MIN_FRAMES:
        raise VideoError(
            f"{header.path} has only {n} frame: a still picture, not a video. Give a video "
            f"file ({SUPPORTED}) of at least {MIN_FRAMES} frames."
        )
    return reader, plan


def frames_to_decode(wanted: np.ndarray, keys: np.ndarray) -> int:
    """How many frames reading the sorted frame numbers ``wanted`` decodes, as the readers seek:
    from the last key frame (of ``keys``) before each one, or on from the previous one when no
    key frame lies between them (every frame from the start when ``keys`` is empty)."""
    pos, total = -1, 0
    for target in wanted.tolist():
        k = int(np.searchsorted(keys, target, side="right")) - 1
        start = int(keys[k]) if k >= 0 and keys[k] > pos else pos + 1
        total += max(0, target - start + 1)
        pos = max(pos, target)
    return total


def check_decode_cost(header: _Header, frames: int, limit: int = MAX_DECODE_PIXELS) -> None:
    """Refuse, before decoding, a read whose ``frames`` at the stored size exceed ``limit`` pixels."""
    cost = frames * header.width * header.height
    if cost <= limit:
        return
    gif = " (a GIF paints every frame on its full canvas)" if header.path.lower().endswith(".gif") else ""
    raise VideoError(
        f"{header.path} would need {frames:,} frames of {header.width}x{header.height} pixels decoded{gif} "
        f"to sample its frames: {cost / 1e9:,.0f} G pixels, and at most {limit / 1e9:,.0f} G are decoded for "
        "one clip. Re-encode it smaller or with more key frames (e.g. ffmpeg -i in.mp4 -vf scale=-2:720 -g 50 out.mp4)."
    )


def _reader(header: _Header, plan: _Plan) -> _DecordReader | _PyAVReader:
    if header.decord_ok:
        try:
            return _DecordReader(header, plan.decode)
        except Exception as exc:  # decord raises DECORDError, RuntimeError or AssertionError
            _log_fallback(header.path, exc)
    return _PyAVReader(header, plan.decode)


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


def _read_header(path: str) -> _Header:
    """The stored frame size, checked against the limits, and the display matrix."""
    try:
        with av.open(path) as container:
            kind = container.format.name
            videos = container.streams.video
            moving = [v for v in videos if not v.disposition & _STILL]
            if kind == "image2" or kind.endswith("_pipe"):
                image = kind.removesuffix("_pipe").upper()
                raise VideoError(
                    f"{path} is a still image ({image}), not a video. Give a video file "
                    f"({SUPPORTED}); GIF animations are supported."
                )
            if not moving:
                what = "only a still picture: cover art or a thumbnail" if videos else "audio only"
                raise VideoError(
                    f"{path} has no video stream ({what}, or no frames at all). "
                    f"Give a video file ({SUPPORTED})."
                )
            stream = moving[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            _check_size(path, width, height)
            rotation, orient = _orientation(next(_decode(container, stream), None))
    except av.FFmpegError as exc:
        raise VideoError(
            f"{path} is not a readable video ({_guess_problem(path)}; FFmpeg says: {_ffmpeg_says(exc)}). "
            f"Use a complete {SUPPORTED} file."
        ) from None
    decord_ok = orient == _UPRIGHT and len(videos) == 1
    return _Header(path, videos.index(stream), decord_ok, width, height, rotation, orient)


def _check_size(path: str, width: int, height: int) -> None:
    if not (MIN_SIDE <= min(width, height) and max(width, height) <= MAX_SIDE):
        raise VideoError(
            f"{path} is {width}x{height} pixels; supported videos have every side between "
            f"{MIN_SIDE} and {MAX_SIDE} pixels. Re-encode it to a usual size "
            "(e.g. ffmpeg -i in.mp4 -vf scale=-2:720 out.mp4)."
        )


def _orientation(frame: av.VideoFrame | None) -> tuple[int, tuple[bool, bool, bool]]:
    """The rotation (degrees counter-clockwise) and the (transpose, flip rows, flip columns)
    that turn a stored frame upright, from the frame's display matrix."""
    sides = frame.side_data if frame is not None else []
    matrix = next(
        (np.frombuffer(bytes(sd), np.int32) for sd in sides if sd.type == SideDataType.DISPLAYMATRIX), None
    )
    if matrix is None:
        return 0, _UPRIGHT
    # The matrix maps a stored pixel (x, y) to (a x + c y, b x + d y) on screen
    # (libavutil/display.h); an angle between quarter turns goes to the nearest one.
    a, b, c, d = (int(v) for v in matrix[[0, 1, 3, 4]])
    transpose = abs(b) > abs(a)
    flip_rows, flip_cols = (b < 0, c < 0) if transpose else (d < 0, a < 0)
    return round(frame.rotation / 90) % 4 * 90, (transpose, flip_rows, flip_cols)


def _ffmpeg_says(exc: av.FFmpegError) -> str:
    """FFmpeg's message in words: PyAV's own text leads with FFmpeg's error code as a number (an
    error tag read as an integer, e.g. [Errno 1094995529]) and ends with the file's path."""
    return exc.strerror or str(exc)


def _guess_problem(path: str) -> str:
    with open(path, "rb") as f:
        text = f.read(1024).decode("utf-8", errors="replace")[:-1]  # the read may cut a char
    if "\ufffd" not in text and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "it looks like a text file"
    return "it may be truncated or corrupt"


def _plan(header: _Header, short_side: int | None) -> _Plan:
    w, h = header.width, header.height
    kept = header.crop or (w, h)
    scale = 1.0 if short_side is None else short_side / min(w, h)
    size = _scaled(kept, scale)
    if header.crop is None:
        return _Plan(size, size, size, header.orient)
    # Cut before enlarging: an 8192x16 frame is decoded at 8192x16, not at 131072x256.
    shrink = min(scale, 1.0)
    return _Plan(_scaled((w, h), shrink), _scaled(kept, shrink), size, header.orient)


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _finish(frames: np.ndarray, plan: _Plan) -> np.ndarray:
    """Decoded frames [N, h, w, 3] centre-cropped, resized and turned upright as planned."""
    (kw, kh), (w, h) = plan.keep, plan.size
    top, left = (frames.shape[1] - kh) // 2, (frames.shape[2] - kw) // 2
    frames = frames[:, top : top + kh, left : left + kw]
    if (kw, kh) != (w, h):
        frames = np.stack([_resize(f, w, h) for f in frames])
    transpose, flip_rows, flip_cols = plan.orient
    if transpose:
        frames = frames.transpose(0, 2, 1, 3)
    if flip_rows:
        frames = frames[:, ::-1]
    if flip_cols:
        frames = frames[:, :, ::-1]
    return frames


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """One RGB frame resized by FFmpeg's scaler, bicubic as FFmpeg's scale filter in the decoders."""
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    return picture.to_ndarray(width=width, height=height, format="rgb24", interpolation="BICUBIC")


class _DecordReader:
    """decord: one index over the file, seeks per frame and resizes while decoding."""

    def __init__(self, header: _Header, size: tuple[int, int]):
        self.header = header
        self._reader = decord.VideoReader(header.path, ctx=decord.cpu(0), width=size[0], height=size[1])
        n, fps = len(self._reader), float(self._reader.get_avg_fps())
        if not fps > 0:
            raise ValueError(f"frame rate {fps}")
        self.info = header.info(n, fps, "decord")
        self.keys = np.asarray(self._reader.get_key_indices(), np.int64)
        times = self._reader.get_frame_timestamp(range(n))[:, 0].astype(np.float64)
        # decord's stamps are garbage (-3.7e17) for some AVIs; fall back to a constant rate.
        sane = np.all(np.isfinite(times)) and times[0] >= 0 and np.all(np.diff(times) > 0)
        self._times = times if sane else np.arange(n) / fps

    def read(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._reader.get_batch(wanted.tolist()).asnumpy(), wanted, self._times[wanted]


class _PyAVReader:
    """PyAV: counts frames from the packets (not from headers) and seeks to key frames."""

    def __init__(self, header: _Header, size: tuple[int, int]):
        self.header, self.path, self.size = header, header.path, size
        with av.open(self.path) as container:
            stream = container.streams.video[header.stream]
            packets = [
                (p.pts if p.pts is not None else p.dts, p.is_keyframe)
                for p in _packets(container, stream)
                if p.size
            ]
            rate, time_base = stream.average_rate or stream.guessed_rate, stream.time_base
        if not packets:
            raise VideoError(f"{self.path} contains no video frames.")
        stamps = [s for s, _ in packets]
        # Without time stamps frames can only be counted in order, never seeked to.
        self._sequential = None in stamps or time_base is None
        if self._sequential:
            stamps, time_base = list(range(len(stamps))), 1 / float(rate or DEFAULT_FPS)
        order = np.argsort(stamps, kind="stable")
        self._pts = np.asarray(stamps, np.int64)[order]
        keyframes = np.asarray([k for _, k in packets])[order]
        self.keys = np.empty(0, np.int64) if self._sequential else np.flatnonzero(keyframes)
        self._times = (self._pts - self._pts[0]) * float(time_base)
        n, span = len(stamps), self._times[-1]
        fps = float(rate) if rate else (n - 1) / span if span > 0 else DEFAULT_FPS
        self.info = header.info(n, fps, "pyav")

    def read(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        frames, got = [], []
        pos, last, anchor = -1, None, 0
        with av.open(self.path) as container:
            stream = container.streams.video[self.header.stream]
            decoded = _decode(container, stream)
            for target in wanted:
                k = np.searchsorted(self.keys, target, side="right") - 1
                if k >= 0 and self.keys[k] > pos:  # a key frame ahead: seeking skips work
                    anchor = int(self.keys[k])
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
        logger.warning("%s: stopped reading at a broken packet (%s)", container.name, _ffmpeg_says(exc))


def _decode(container: av.container.InputContainer, stream: av.VideoStream):
    """Decoded frames from the current position; stops at the first undecodable packet."""
    for packet in _packets(container, stream):
        try:
            yield from packet.decode()
        except av.FFmpegError as exc:
            logger.warning("%s: stopped decoding at a corrupt packet (%s)", container.name, _ffmpeg_says(exc))
            return
