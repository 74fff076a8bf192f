"""Browser-playable H.264 MP4 files written with PyAV: an upload's playable copy, and frames.

Browsers play H.264 (4:2:0) in MP4, VP8/VP9/AV1 in WebM and Theora in Ogg; an .avi, MPEG-4
part 2, a GIF, a .mov or a .mkv plays in some browsers and not in others, although the
decoder (``kgclip_core.video``) reads them all. :func:`playable_copy` leaves a playable file
as it is and writes an H.264 copy of any other one once, beside it, reused on later calls.
The copy only previews the upload (recognition always reads the original), so it is bounded:

- ``PREVIEW_MAX_SECONDS`` (60 s) of video: a longer clip's copy shows its start;
- ``PREVIEW_MAX_SIDE`` (640 px) on the long side and ``PREVIEW_MAX_FPS`` (30) frames a second;
- ``PREVIEW_TIME_LIMIT_S`` (20 s) of encoding: past it the copy ends where it got to;
- ``PREVIEW_MAX_PIXELS`` (5 G, a quarter of what recognition may decode) stored pixels
  decoded: a clip of large frames is shown for as many frames as fit (an 8192x8192 GIF canvas:
  74 frames; 4K: 20 s at 30 fps), each decoded straight to the preview's size, so no full-size
  frame is ever held.

:func:`write_mp4` writes frames (e.g. a report's heatmap video) as H.264 the same way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice
from pathlib import Path

import av
import numpy as np

from kgclip_core.errors import VideoError
from kgclip_core.video import VideoInfo, probe_video

logger = logging.getLogger(__name__)

PREVIEW_MAX_SECONDS = 60.0
PREVIEW_MAX_SIDE = 640
PREVIEW_MAX_FPS = 30
PREVIEW_TIME_LIMIT_S = 20.0
PREVIEW_MAX_PIXELS = 5_000_000_000
# (file suffix, video codec) pairs every current browser plays; the pixel format matters too:
# Chrome and Firefox decode 4:2:0 H.264 only.
BROWSER_CODECS = {".mp4": {"h264", "av1"}, ".m4v": {"h264"}, ".webm": {"vp8", "vp9", "av1"},
                  ".ogv": {"theora"}, ".ogg": {"theora"}}
BROWSER_PIX_FMTS = {"yuv420p", "yuvj420p"}
ENCODER = "libx264"
_COPY_SUFFIX = ".playable.mp4"


@dataclass(frozen=True)
class Playable:
    """What the browser's player can show for an upload, and a note for people."""

    path: str | None  # the upload itself, its H.264 copy, or None when neither plays
    note: str  # empty when the upload plays as it is


def is_playable(path: str | Path) -> bool:
    """Whether browsers play this file as it is (container, codec and pixel format)."""
    suffix = Path(path).suffix.lower()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            codec, pix_fmt = stream.codec_context.name, stream.codec_context.format
    except (av.FFmpegError, IndexError):
        return False
    codec = "h264" if codec in {"h264", "libx264", "libopenh264"} else codec
    return codec in BROWSER_CODECS.get(suffix, set()) and (pix_fmt is None or pix_fmt.name in BROWSER_PIX_FMTS)


def playable_copy(path: str | Path) -> Playable:
    """The upload if browsers play it, else its bounded H.264 copy (made once, beside it).

    Never raises: a file that is no video, or whose copy fails, gets ``path=None`` and a note
    saying what the user will see instead. Notes name the file by its name, never its folder.
    """
    path = Path(path)
    try:
        info = probe_video(path)
    except VideoError:
        return Playable(None, f"{path.name} cannot be read as a video: Recognise says why.")
    if is_playable(path):
        return Playable(str(path), "")
    copy = _copy_path(path)
    try:
        if not copy.is_file():
            _transcode(path, copy, info)
    except (av.FFmpegError, VideoError, OSError, ValueError) as err:
        logger.warning("No playable copy of %s: %s", path.name, err)
        return Playable(None, f"Your browser cannot play {path.name} and no playable copy could be made; "
                              "Recognise still reads it, and its sampled frames show beside it.")
    shown = probe_video(copy).duration
    note = f"Shown as a browser-playable copy (H.264); recognition reads the original {path.name}."
    if shown < info.duration - 1.0:
        note += f" The copy shows the first {shown:.0f} s of {info.duration:.0f} s."
    return Playable(str(copy), note)


def _copy_path(path: Path) -> Path:
    """Beside the upload (so whatever cleans uploads cleans it), else in the temp folder under
    a name that changes with the file."""
    if os.access(path.parent, os.W_OK):
        return path.with_name(f"{path.name}{_COPY_SUFFIX}")
    stat = path.resolve().stat()
    key = hashlib.sha1(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"kgclip-{key}{_COPY_SUFFIX}"


def _transcode(source: Path, target: Path, info: VideoInfo) -> None:
    """Write the bounded H.264 copy of ``source`` to ``target`` (atomically: whole or absent)."""
    deadline = time.monotonic() + PREVIEW_TIME_LIMIT_S
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or PREVIEW_MAX_FPS)
        fps = min(rate, PREVIEW_MAX_FPS)
        width, height = stream.codec_context.width, stream.codec_context.height
        decoded = islice(container.decode(stream), max(2, PREVIEW_MAX_PIXELS // (width * height)))
        frames = _upright(decoded, stream, _scaled_even(width, height, PREVIEW_MAX_SIDE), info.rotation, info.mirrored)
        count = write_mp4(_resample(frames, fps, deadline), target, fps, max_side=PREVIEW_MAX_SIDE)
    logger.info("Playable copy of %s: %d frames at %.1f fps", source.name, count, fps)


def _upright(decoded: Iterable[av.VideoFrame], stream: av.VideoStream, size: tuple[int, int], rotation: int,
             mirrored: bool) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds, upright RGB frame of ``size`` before turning) of each decoded frame; a file's
    display matrix is applied because the copy carries none."""
    base = stream.start_time or 0
    for i, frame in enumerate(decoded):
        seconds = float((frame.pts - base) * stream.time_base) if frame.pts is not None else i / PREVIEW_MAX_FPS
        image = np.rot90(frame.to_ndarray(width=size[0], height=size[1], format="rgb24"), rotation // 90)
        yield seconds, image[:, ::-1] if mirrored else image


def _resample(frames: Iterable[tuple[float, np.ndarray]], fps: float, deadline: float) -> Iterator[np.ndarray]:
    """Frames at a constant ``fps`` (a GIF's frames last as long as each says), bounded by
    PREVIEW_MAX_SECONDS and the encoding deadline."""
    written = 0
    limit = int(PREVIEW_MAX_SECONDS * fps)
    previous = None
    for seconds, image in frames:
        due = min(int(seconds * fps), limit)
        while previous is not None and written < due:  # hold the previous frame until this one is due
            yield previous
            written += 1
        if written >= limit or time.monotonic() > deadline:
            return
        previous = image
    if previous is not None and written < limit:
        yield previous


def partial_path(path: Path) -> Path:
    """The temporary name :func:`write_mp4` writes a video under before renaming it to ``path``."""
    return path.with_name(f".{path.name}.part")


def write_mp4(frames: Iterable[np.ndarray], path: str | Path, fps: float, max_side: int | None = None) -> int:
    """Write RGB frames [H, W, 3] as an H.264 MP4 (4:2:0, plays in every browser); returns the
    number written. Frames are scaled so the long side is at most ``max_side``, to even sides
    (4:2:0 needs them). Written to a temporary name and renamed: the file is whole or absent."""
    path = Path(path)
    partial = partial_path(path)
    count = 0
    try:
        with av.open(str(partial), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = None
            for image in frames:
                if stream is None:
                    stream = _h264_stream(container, image.shape[1], image.shape[0], fps, max_side)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                container.mux(stream.encode(frame.reformat(stream.width, stream.height, format="yuv420p")))
                count += 1
            if stream is None:
                raise ValueError("no frames to write")
            container.mux(stream.encode())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count


def _scaled_even(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled so the long side is at most ``max_side``, to even sides (4:2:0 needs them)."""
    scale = min(1.0, max_side / max(width, height)) if max_side else 1.0
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _h264_stream(container: av.container.OutputContainer, width: int, height: int, fps: float,
                 max_side: int | None) -> av.VideoStream:
    stream = container.add_stream(ENCODER, rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height = _scaled_even(width, height, max_side)
    stream.pix_fmt = "yuv420p"
    stream.options = {"preset": "veryfast", "crf": "23"}
    return stream
