"""Tests for kgclip_core.video: TSN sampling, both decoding backends, real clips, phone
rotation, extreme frame shapes, bad input."""

from __future__ import annotations

import csv
import logging
import tracemalloc
from pathlib import Path

import av
import decord
import numpy as np
import pytest
from PIL import Image

from _videos import cover_art_mp3, one_frame_gif, phone_video, ramp_video, write_video
from kgclip_core import video
from kgclip_core.errors import VideoError
from kgclip_core.video import MAX_SIDE, probe_video, read_clip, sample_indices

CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "clips"
MANIFEST = CLIPS / "manifest.csv"
MANIFEST_ROWS = list(csv.DictReader(MANIFEST.open())) if MANIFEST.exists() else []
needs_clips = pytest.mark.skipif(not MANIFEST_ROWS, reason=f"real clips not found at {CLIPS}")

BAR = 4  # width in pixels of the bar that marks a frame's index in generated videos


def bar_frames(n: int, height: int = 48) -> np.ndarray:
    """Frame i is grey with a white vertical bar at x = BAR * i, so pixels tell the index."""
    frames = np.full((n, height, BAR * max(n, 16), 3), 60, np.uint8)
    for i in range(n):
        frames[i, :, BAR * i : BAR * (i + 1)] = 255
    return frames


def bar_index(frame: np.ndarray) -> int:
    return int(np.argmax(frame.mean(axis=(0, 2)))) // BAR


def assert_valid_clip(clip: video.Clip, views: int, frames: int) -> None:
    assert clip.frames.dtype == np.uint8
    assert clip.frames.shape[:2] == (views, frames) and clip.frames.shape[-1] == 3
    assert clip.indices.shape == clip.timestamps.shape == (views, frames)
    assert np.issubdtype(clip.indices.dtype, np.integer)
    assert clip.indices.min() >= 0 and clip.indices.max() < clip.info.num_frames
    assert np.all(np.diff(clip.indices, axis=1) >= 0)
    assert np.all(np.diff(clip.timestamps, axis=1) >= 0) and clip.timestamps.min() >= 0
    assert clip.timestamps.max() <= clip.info.duration


def _raise_decord_error(*args, **kwargs):
    raise decord.DECORDError("rejected by the test")


@pytest.fixture
def no_decord(monkeypatch):
    """Make decord reject every file, as it does for GIF and broken containers."""
    monkeypatch.setattr(video.decord, "VideoReader", _raise_decord_error)


# --- sampling ---------------------------------------------------------------------------


@pytest.mark.parametrize("n, t", [(80, 8), (300, 16), (7, 3), (100, 1)])
def test_test_mode_takes_segment_centres(n, t):
    idx = sample_indices(n, t)
    segment = n / t
    assert idx.shape == (1, t)
    np.testing.assert_array_equal(idx[0], np.floor((np.arange(t) + 0.5) * segment))


def test_views_shift_evenly_inside_segments():
    n, t, v = 240, 8, 4
    idx = sample_indices(n, t, num_views=v)
    segment = n / t
    starts = np.arange(t) * segment
    assert np.all(idx >= starts) and np.all(idx < starts + segment)
    gaps = np.diff(idx, axis=0)  # view to view, inside each segment
    assert np.all(np.abs(gaps - segment / v) <= 1)


def test_train_mode_is_random_inside_segments_and_reproducible():
    n, t = 64, 4
    rngs = [np.random.default_rng(seed) for seed in range(200)]
    draws = np.concatenate([sample_indices(n, t, "train", num_views=2, rng=r) for r in rngs])
    segment_of = draws // (n // t)
    np.testing.assert_array_equal(segment_of, np.broadcast_to(np.arange(t), draws.shape))
    assert len(np.unique(draws)) == n  # every frame of every segment can be drawn
    a = sample_indices(n, t, "train", rng=np.random.default_rng(7))
    b = sample_indices(n, t, "train", rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_short_video_repeats_frames():
    idx = sample_indices(3, 8, num_views=2)
    assert idx.shape == (2, 8)
    assert set(idx.ravel()) == {0, 1, 2}
    assert np.all(np.diff(idx, axis=1) >= 0)
    np.testing.assert_array_equal(sample_indices(1, 4, "train", rng=np.random.default_rng(0)), 0)


@pytest.mark.parametrize(
    "args", [(0, 8), (10, 0), (10, 8, "test", 0), (10, 8, "eval")]
)
def test_sampling_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        sample_indices(*args)


# --- decoding ---------------------------------------------------------------------------


@needs_clips
@pytest.mark.parametrize("row", MANIFEST_ROWS, ids=[r["path"] for r in MANIFEST_ROWS])
def test_every_real_clip_decodes(row):
    clip = read_clip(CLIPS / row["path"], 8)
    info = clip.info
    assert_valid_clip(clip, 1, 8)
    assert info.num_frames >= 8 and info.fps > 0 and info.duration > 0
    short, long = sorted((info.width, info.height))
    out_short, out_long = sorted(clip.frames.shape[2:4])
    assert out_short == 256 and abs(out_long - round(long * 256 / short)) <= 1
    assert np.all(np.diff(clip.indices[0]) > 0)  # every clip is longer than 8 frames
    assert np.all(np.diff(clip.timestamps[0]) > 0)
    assert clip.frames.std() > 5  # real pictures, not blank buffers


@needs_clips
@pytest.mark.parametrize(
    "name", ["fingerrec/v_Shotput_g05_c02.avi", "fingerrec/ride_horse.mp4", "stgcn/ta_chi.mp4"]
)
def test_pyav_fallback_matches_decord_on_real_clips(name, monkeypatch):
    # v_Shotput is an AVI with packed B-frames whose decoded time stamps come out swapped.
    expected = read_clip(CLIPS / name, 8, num_views=2)
    monkeypatch.setattr(video.decord, "VideoReader", _raise_decord_error)
    got = read_clip(CLIPS / name, 8, num_views=2)
    assert (expected.info.backend, got.info.backend) == ("decord", "pyav")
    assert got.info.num_frames == expected.info.num_frames
    np.testing.assert_array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.timestamps, expected.timestamps, atol=1e-3)
    assert got.frames.shape == expected.frames.shape
    # Only the resize filters differ between the backends.
    assert np.abs(got.frames.astype(int) - expected.frames.astype(int)).mean() < 3


@needs_clips
def test_train_views_are_reproducible_on_a_real_clip():
    path = CLIPS / MANIFEST_ROWS[0]["path"]
    a = read_clip(path, 4, mode="train", num_views=3, rng=np.random.default_rng(1))
    b = read_clip(path, 4, mode="train", num_views=3, rng=np.random.default_rng(1))
    c = read_clip(path, 4, mode="train", num_views=3, rng=np.random.default_rng(2))
    assert_valid_clip(a, 3, 4)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert not np.array_equal(a.indices, c.indices)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_frames_match_their_indices(tmp_path, backend, request):
    if backend == "pyav":
        request.getfixturevalue("no_decord")
    path = write_video(tmp_path / "bars.mp4", bar_frames(30), gop=4)
    clip = read_clip(path, 8, num_views=3, short_side=None)
    assert clip.info.backend == backend and clip.info.num_frames == 30
    assert_valid_clip(clip, 3, 8)
    shown = np.vectorize(lambda v, t: bar_index(clip.frames[v, t]))(*np.indices((3, 8)))
    np.testing.assert_array_equal(shown, clip.indices)
    np.testing.assert_allclose(clip.timestamps, clip.indices / 25, atol=1e-6)


def test_pyav_seeks_instead_of_decoding_the_whole_video(tmp_path, no_decord, monkeypatch):
    frames = np.repeat(np.arange(600, dtype=np.uint8)[:, None, None, None], 48, 1)
    path = write_video(tmp_path / "long.mp4", np.broadcast_to(frames, (600, 48, 64, 3)), gop=25)
    decoded = []
    decode = video._decode

    def counting_decode(container, stream):
        for frame in decode(container, stream):
            decoded.append(frame)
            yield frame

    monkeypatch.setattr(video, "_decode", counting_decode)
    clip = read_clip(path, 4)
    assert clip.info.num_frames == 600
    assert len(decoded) < 4 * 25 + 20  # one key-frame interval per sampled frame, not 600


def test_gif_animation_is_read_with_pyav(tmp_path, caplog):
    path = write_video(tmp_path / "bars.gif", bar_frames(12), codec="gif")
    with caplog.at_level(logging.INFO, logger="kgclip_core.video"):
        clip = read_clip(path, 4, short_side=None)
    assert "using PyAV" in caplog.text
    assert clip.info.backend == "pyav" and clip.info.num_frames == 12
    assert [bar_index(f) for f in clip.frames[0]] == clip.indices[0].tolist()


def test_raw_stream_without_container_metadata_is_counted_in_order(tmp_path, caplog):
    # A bare H.264 stream has no time stamps or frame count: decord gives up, PyAV counts.
    path = write_video(tmp_path / "bars.h264", bar_frames(30), fmt="h264")
    with caplog.at_level(logging.INFO, logger="kgclip_core.video"):
        clip = read_clip(path, 8, num_views=2, short_side=None)
    assert "using PyAV" in caplog.text
    assert clip.info.backend == "pyav" and clip.info.num_frames == 30
    assert_valid_clip(clip, 2, 8)
    shown = [[bar_index(f) for f in view] for view in clip.frames]
    assert shown == clip.indices.tolist()
    np.testing.assert_allclose(clip.timestamps, clip.indices / 25)


def test_video_shorter_than_the_clip_repeats_frames(tmp_path):
    path = write_video(tmp_path / "three.mp4", bar_frames(3))
    clip = read_clip(path, 8, short_side=None)
    assert_valid_clip(clip, 1, 8)
    assert set(clip.indices[0].tolist()) == {0, 1, 2}
    assert [bar_index(f) for f in clip.frames[0]] == clip.indices[0].tolist()


def test_single_frame_clip_takes_the_middle(tmp_path):
    path = write_video(tmp_path / "bars.mp4", bar_frames(9))
    clip = read_clip(path, 1, short_side=None)
    assert clip.indices.tolist() == [[4]] and bar_index(clip.frames[0, 0]) == 4


@pytest.mark.parametrize("short_side", [32, 100, None])
def test_resize_keeps_the_aspect_ratio(tmp_path, short_side):
    frames = np.random.default_rng(0).integers(0, 255, (4, 96, 48, 3), np.uint8)  # portrait
    path = write_video(tmp_path / "portrait.mp4", frames)
    clip = read_clip(path, 2, short_side=short_side)
    expected = (96, 48) if short_side is None else (2 * short_side, short_side)
    assert clip.frames.shape[2:4] == expected
    assert (clip.info.width, clip.info.height) == (48, 96)


def test_4k_video_is_resized_while_decoding(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (2, 2160, 3840, 3), np.uint8)
    path = write_video(tmp_path / "uhd.mp4", frames, codec="mpeg4")
    clip = read_clip(path, 2)
    assert clip.frames.shape == (1, 2, 256, 455, 3)
    assert (clip.info.width, clip.info.height) == (3840, 2160)


def test_probe_reports_metadata(tmp_path):
    path = write_video(tmp_path / "bars.mp4", bar_frames(20, height=40))
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height, info.backend) == (20, 80, 40, "decord")
    assert info.fps == pytest.approx(25) and info.duration == pytest.approx(0.8)


@pytest.mark.parametrize(
    "rotation, hflip", [(90, False), (180, False), (270, False), (90, True)],
    ids=["90", "180", "270", "90-mirrored"],
)
def test_phone_video_comes_back_upright(tmp_path, rotation, hflip):
    path, upright = phone_video(tmp_path / "phone.mp4", rotation, hflip)
    info = probe_video(path)
    assert (info.width, info.height, info.rotation, info.mirrored) == (96, 160, rotation, hflip)
    clip = read_clip(path, 2, short_side=None)
    # decord 0.6 turns such files itself but squeezes them into the stored shape: PyAV reads them.
    assert clip.info.backend == "pyav" and clip.frames.shape == (1, 2, 160, 96, 3)
    assert np.abs(clip.frames.astype(int) - upright).mean() < 4
    assert read_clip(path, 2, short_side=48).frames.shape == (1, 2, 80, 48, 3)


def test_frames_decord_cannot_deliver_are_cropped_by_the_fallback_too(tmp_path, monkeypatch):
    path = ramp_video(tmp_path / "long.mp4", 8192, 16)
    monkeypatch.setattr(video._DecordReader, "read", _raise_decord_error)
    clip = read_clip(path, 2)
    assert clip.info.backend == "pyav" and clip.info.crop == (64, 16)
    assert clip.frames.shape == (1, 2, 256, 1024, 3)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize(
    "stored, rotation, crop, shape",
    [
        ((8192, 16), 0, (64, 16), (256, 1024)),
        ((32, 8192), 0, (32, 128), (1024, 256)),
        ((16, 512), 90, (64, 16), (256, 1024)),  # a tall stored frame shown wide
        ((64, 16), 0, None, (256, 1024)),  # exactly 4:1 is kept whole
    ],
    ids=["8192x16", "32x8192", "16x512-rot90", "64x16"],
)
def test_elongated_video_is_centre_cropped_before_the_resize(
    tmp_path, backend, stored, rotation, crop, shape, request
):
    if backend == "pyav":
        request.getfixturevalue("no_decord")
    path = ramp_video(tmp_path / "long.mp4", *stored, rotation=rotation)
    tracemalloc.start()
    try:
        clip = read_clip(path, 2, short_side=256)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    info = clip.info
    assert clip.frames.shape == (1, 2, *shape, 3) and info.crop == crop
    assert info.backend == ("pyav" if rotation else backend)
    # Decoded frames are at most MAX_SIDE x 256 pixels; 8192x16 resized whole is 131072x256.
    assert peak < 4 * 2 * MAX_SIDE * 256 * 3
    red = clip.frames[..., 0].astype(int)
    if crop is None:
        assert red.min() < 10 and red.max() > 245  # the whole ramp
        assert info.crop_note is None
    else:
        span = 255 * max(crop) / max(stored)  # of the ramp, in the kept middle
        assert abs(red.mean() - 127.5) < 4 and red.max() - red.min() < span + 8
        assert f"{info.width}x{info.height}" in info.crop_note and "4:1" in info.crop_note


# --- bad input --------------------------------------------------------------------------


def _truncated_copy(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _faststart_copy(src: Path, dst: Path) -> Path:
    """Remux with the index (moov) first, so a truncated copy still opens."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return dst


def _make_bad_input(kind: str, tmp: Path) -> Path:
    if kind == "missing":
        return tmp / "missing.mp4"
    if kind == "directory":
        return tmp
    path = tmp / f"{kind}.mp4"
    if kind == "empty":
        path.touch()
    elif kind == "text":
        path.write_text("this is a note, not a video\n")
    elif kind in ("png", "jpeg"):
        Image.new("RGB", (64, 48), "red").save(path, format=kind.upper())
    elif kind == "no_frames":
        with av.open(str(path), "w") as container:
            stream = container.add_stream("mpeg4", rate=25)
            stream.width, stream.height = 64, 48
            container.start_encoding()
    elif kind == "audio_only":
        with av.open(str(path), "w") as container:
            container.add_stream("aac", rate=16000)
            container.start_encoding()
    elif kind == "tiny":
        write_video(path, np.zeros((4, 8, 8, 3), np.uint8))
    elif kind == "huge":
        path = write_video(tmp / "huge.gif", np.zeros((2, 16, 9000, 3), np.uint8), codec="gif")
    elif kind == "truncated":
        src = write_video(tmp / "full.mp4", bar_frames(30))
        _truncated_copy(src, path)
    elif kind == "cover_art":
        path = cover_art_mp3(tmp / "song.mp3")
    elif kind == "one_frame_gif":
        path = one_frame_gif(tmp / "still.gif")
    elif kind == "one_frame":
        write_video(path, bar_frames(1))
    return path


BAD_INPUTS = {
    "missing": "not found",
    "directory": "is a directory",
    "empty": "empty",
    "text": "text file",
    "png": "still image",
    "jpeg": "still image",
    "no_frames": "no video stream",
    "audio_only": "no video stream",
    "tiny": "8x8 pixels",
    "huge": "9000x16 pixels",
    "truncated": "truncated",
    "cover_art": "only a still picture: cover art",
    "one_frame_gif": "only 1 frame: a still picture",
    "one_frame": "only 1 frame: a still picture",
}


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_raises_one_clear_video_error(kind, tmp_path):
    path = _make_bad_input(kind, tmp_path)
    with pytest.raises(VideoError, match=BAD_INPUTS[kind]):
        probe_video(path)
    with pytest.raises(VideoError, match=BAD_INPUTS[kind]):
        read_clip(path)


@needs_clips
def test_truncated_real_clip_without_index_is_a_clear_error(tmp_path):
    src = CLIPS / "fingerrec/ride_horse.mp4"  # index (moov) at the end: cut off
    with pytest.raises(VideoError, match="truncated or corrupt"):
        read_clip(_truncated_copy(src, tmp_path / "cut.mp4"))


@needs_clips
@pytest.mark.parametrize("name", ["stgcn/ta_chi.mp4", "c3dkeras/v_Biking_g05_c02.avi"])
def test_truncated_real_clip_decodes_the_frames_that_are_there(name, tmp_path):
    src = CLIPS / name
    if src.suffix == ".mp4":
        src = _faststart_copy(src, tmp_path / "faststart.mp4")
    full = probe_video(src).num_frames
    clip = read_clip(_truncated_copy(src, tmp_path / f"cut{src.suffix}"), 8, num_views=2)
    assert_valid_clip(clip, 2, 8)
    assert 8 <= clip.info.num_frames < full
    assert clip.frames.std() > 5
