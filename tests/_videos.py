"""Videos the tests write with PyAV: plain clips, phone clips with a display matrix, frames of
extreme shapes, and still pictures in video containers (cover art, a one-frame GIF)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
from PIL import Image


def write_video(
    path: Path,
    frames: np.ndarray,
    codec: str = "libx264",
    gop: int = 4,
    fmt: str | None = None,
    rotation: int = 0,
    hflip: bool = False,
) -> Path:
    """Encode uint8 RGB frames [N, H, W, 3] at 25 fps; ``rotation`` (degrees counter-clockwise)
    and ``hflip`` go into the display matrix, as a phone records a portrait video."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        if codec != "gif":
            stream.gop_size = gop
        if rotation or hflip:
            stream.set_display_rotation(rotation, hflip=hflip)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def upright_picture(height: int = 160, width: int = 96) -> np.ndarray:
    """A picture whose red grows rightwards and green downwards, so any turn or mirror shows."""
    y, x = np.mgrid[0:height, 0:width]
    red, green = x * 255 // (width - 1), y * 255 // (height - 1)
    return np.stack([red, green, np.full_like(x, 60)], axis=-1).astype(np.uint8)


def phone_video(path: Path, rotation: int, hflip: bool = False, frames: int = 4) -> tuple[Path, np.ndarray]:
    """A clip stored turned and mirrored so that its display matrix shows the upright picture;
    returns the path and that picture [160, 96, 3] (portrait)."""
    upright = upright_picture()
    # The display matrix mirrors after it rotates, so undo the mirror first.
    stored = np.rot90(upright[:, ::-1] if hflip else upright, -rotation // 90)
    clip = np.repeat(np.ascontiguousarray(stored)[None], frames, axis=0)
    return write_video(path, clip, rotation=rotation, hflip=hflip), upright


def ramp_video(path: Path, width: int, height: int, frames: int = 4, rotation: int = 0) -> Path:
    """A clip whose red channel ramps 0..255 along the long side of the stored frame."""
    long = max(width, height)
    ramp = (np.arange(long) * 255 // (long - 1)).astype(np.uint8)
    red = np.broadcast_to(ramp[None, :] if width >= height else ramp[:, None], (height, width))
    picture = np.stack([red, np.full_like(red, 60), np.full_like(red, 60)], axis=-1)
    return write_video(path, np.repeat(picture[None], frames, axis=0), rotation=rotation)


def cover_art_mp3(path: Path) -> Path:
    """One second of tone with an embedded cover picture (an attached-picture video stream)."""
    cover = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(cover, format="JPEG")
    with av.open(str(path), "w") as container:
        audio = container.add_stream("libmp3lame", rate=16000, layout="mono")
        picture = container.add_stream("mjpeg")
        picture.width = picture.height = 64
        picture.pix_fmt = "yuvj420p"
        picture.disposition = av.stream.Disposition.attached_pic
        packet = av.Packet(cover.getvalue())
        packet.stream, packet.pts, packet.dts = picture, 0, 0
        container.mux(packet)
        tone = (np.sin(np.arange(16000) / 5) * 3000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return path


def one_frame_gif(path: Path) -> Path:
    """A GIF of a single frame: a still picture in an animation container."""
    return write_video(path, upright_picture()[None], codec="gif")


def recoded(source: Path, path: Path, codec: str, fmt: str | None = None, size: int = 160) -> Path:
    """``source``'s frames written again with ``codec`` (e.g. an example clip as a GIF or an
    MPEG-4 part 2 .avi, which browsers do not play), every frame ``size`` px on its short side."""
    from kgclip_core.video import probe_video, read_clip

    clip = read_clip(source, num_frames=probe_video(source).num_frames, short_side=size)
    frames = clip.frames[0]
    even = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]  # 4:2:0 needs even sides
    return write_video(path, np.ascontiguousarray(even), codec=codec, fmt=fmt)


def gif_bomb(path: Path, frames: int = 3000, side: int = 8192) -> Path:
    """A tiny GIF that is costly to decode: ``frames`` one-pixel frames on a ``side`` x ``side``
    canvas (3,000 on 8192x8192 make 69 kB). A decoder paints every frame on the full canvas, so
    decoding it costs canvas pixels x frames, whatever the file's size."""
    header = b"GIF89a" + side.to_bytes(2, "little") * 2 + bytes([0xF0, 0, 0]) + bytes([0, 0, 0, 255, 255, 255])
    # Each frame: a graphic control extension (10 ms), a 1x1 image at (0, 0), and its LZW data:
    # the codes clear (4), colour 1, end (5) in 3 bits each, least significant first.
    frame = bytes([0x21, 0xF9, 4, 0x04, 1, 0, 0, 0]) + b"\x2c" + bytes(4) + (1).to_bytes(2, "little") * 2 + b"\x00" \
        + bytes([2, 2, 0x4C, 0x01, 0])
    path.write_bytes(header + frame * frames + b"\x3b")
    return path
