"""The timeline of a long clip (kgclip_core.timeline) on stitched synthetic videos whose boundaries
are known (kgclip_core.synth.stitch), with the demo checkpoint; its limits; ``kgclip predict --timeline``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from kgclip_core import cli, timeline as tl
from kgclip_core.budget import RequestLimits
from kgclip_core.errors import BudgetError, ConfigError, VideoError
from kgclip_core.explain.timeline import timeline_chart, timeline_markdown
from kgclip_core.prediction import Timeline, TimelineWindow
from kgclip_core.report import timeline_report_html
from kgclip_core.synth.stitch import StitchConfig, write_stitched
from kgclip_core.video import FrameSource, VideoInfo
from _videos import ramp_video
from conftest import CHECKPOINTS, REPO

EXAMPLE = REPO / "assets" / "examples" / "wave_right_hand.mp4"  # 40 frames at 16 fps: 2.5 s


@pytest.fixture(scope="module")
def stitched(tmp_path_factory) -> dict:
    """One stitched video of four actions (fresh clips, seed 11), and its ground truth."""
    folder = tmp_path_factory.mktemp("stitched")
    truth = write_stitched(folder, 1, seed=11, cfg=StitchConfig(segments=4, max_clips=2))[0]
    return {**truth, "file": folder / truth["path"]}


@pytest.fixture(scope="module")
def line(demo_predictor, stitched):
    return tl.timeline(demo_predictor, stitched["file"], top_k=3)


def test_the_generator_writes_its_boundaries(stitched):
    segments = stitched["segments"]
    assert len(segments) == 4
    assert all(a["action"] != b["action"] for a, b in zip(segments, segments[1:]))  # each boundary changes action
    assert stitched["boundaries"] == [s["start"] for s in segments[1:]]
    assert segments[0]["start"] == 0 and segments[-1]["end"] == stitched["duration"]
    info = FrameSource(stitched["file"]).info
    assert info.num_frames == stitched["num_frames"] == segments[-1]["end_frame"]


def test_a_stitched_video_gives_its_segments_in_the_right_order(line, stitched):
    truth = [s["action"] for s in stitched["segments"]]
    assert [s.class_name for s in line.segments] == truth
    found = [s.start for s in line.segments[1:]]
    assert np.abs(np.subtract(found, stitched["boundaries"])).max() <= 1.0  # seconds
    # The segments tile the clip, each window in exactly one of them, in time order.
    assert line.segments[0].start == 0 and line.segments[-1].end == pytest.approx(stitched["duration"])
    assert all(a.end == b.start for a, b in zip(line.segments, line.segments[1:]))
    assert [i for s in line.segments for i in s.windows] == list(range(len(line.windows)))


def test_windows_cover_the_clip_at_the_documented_length_and_stride(line, stitched):
    starts = [w.start for w in line.windows]
    assert np.allclose(np.diff(starts), tl.STRIDE_S) and starts[0] == 0
    assert all(w.end - w.start == pytest.approx(tl.WINDOW_S) for w in line.windows)
    assert line.windows[-1].end <= stitched["duration"] < line.windows[-1].end + tl.STRIDE_S
    assert all(len(w.frame_indices) == 8 and len(w.labels) == 3 and w.evidence for w in line.windows)


def test_a_window_says_what_predict_says_of_its_stretch(demo_predictor, line, stitched):
    for w in (line.windows[3], line.windows[len(line.windows) // 2]):
        pred = demo_predictor.predict(stitched["file"], top_k=3, span=(w.start, w.end))
        assert pred.frame_indices == w.frame_indices
        assert pred.class_names == w.class_names
        assert np.allclose(pred.scores, w.scores, atol=1e-4)
        assert (pred.fit, pred.unsure) == pytest.approx((w.fit, w.unsure), abs=1e-4)
        assert [e.text for e in pred.evidence] == [e.text for e in w.evidence]
        assert [e.present for e in pred.evidence] == [e.present for e in w.evidence]


def test_each_frame_is_decoded_once_in_batches(demo_predictor, stitched, monkeypatch):
    reads = []
    real_read = FrameSource.read

    def counted(self, wanted):
        reads.append(np.asarray(wanted))
        return real_read(self, wanted)

    monkeypatch.setattr(FrameSource, "read", counted)
    line = tl.timeline(demo_predictor, stitched["file"], top_k=1)
    read = np.concatenate(reads)
    assert len(np.unique(read)) == len(read) == line.frames_decoded  # no frame twice
    assert all(len(r) <= tl.BATCH_FRAMES for r in reads)
    assert set(read) == {i for w in line.windows for i in w.frame_indices}
    # Overlapping windows share frames: far fewer reads than windows x frames.
    assert line.frames_decoded <= len(line.windows) * line.frames_per_window / 3


def test_a_segment_is_explained_by_its_surest_window(demo_predictor, line, stitched):
    segment = line.segments[1]
    pred = tl.segment_prediction(demo_predictor, stitched["file"], line, 1, top_k=3)
    best = line.windows[segment.best_window]
    assert pred.class_names[0] == segment.class_name
    assert pred.scores[0] == pytest.approx(max(line.windows[i].scores[0] for i in segment.windows), abs=1e-4)
    assert pred.frame_indices == best.frame_indices and pred.evidence_maps is not None
    with pytest.raises(ConfigError, match="segments 0 to 3"):
        tl.segment_prediction(demo_predictor, stitched["file"], line, 4)


def test_a_clip_shorter_than_a_window_is_one_window(demo_predictor):
    line = tl.timeline(demo_predictor, EXAMPLE, top_k=2, cfg=tl.TimelineConfig(window_s=4.0, stride_s=1.0))
    assert len(line.windows) == 1 and len(line.segments) == 1
    assert line.windows[0].start == 0 and line.windows[0].end == pytest.approx(2.5)
    assert line.segments[0].class_name == "wave right hand"
    assert demo_predictor.predict(EXAMPLE, top_k=2).class_names == line.windows[0].class_names


def test_windows_merge_into_segments_cut_halfway_between_centres():
    def window(start: float, name: str, score: float, unsure: bool = False) -> TimelineWindow:
        return TimelineWindow(start, start + 2, [name.title()], [name], [score], [], None, unsure)

    windows = [window(0, "a", 0.9), window(1, "a", 0.7, True), window(2, "b", 0.6, True), window(3, "b", 0.8, True),
               window(4, "a", 0.5)]
    segments = tl.segments_of(windows, 6.5)
    assert [(s.class_name, s.start, s.end, s.windows) for s in segments] == [
        ("a", 0.0, 2.5, [0, 1]), ("b", 2.5, 4.5, [2, 3]), ("a", 4.5, 6.5, [4])]
    assert [s.best_window for s in segments] == [0, 3, 4]
    assert [s.unsure for s in segments] == [False, True, False]  # most windows "not sure": the segment too
    assert segments[0].score == pytest.approx(0.8)


@pytest.mark.parametrize("window, stride, message", [
    (0.1, 0.1, "window must be 0.5 to 30"), (2.0, 3.0, "stride must be 0.1 seconds to the window"),
    (2.0, 0.0, "stride must be"), (float("nan"), 1.0, "window must be")])
def test_a_bad_window_or_stride_is_refused(window, stride, message):
    with pytest.raises(ConfigError, match=message):
        tl.TimelineConfig(window_s=window, stride_s=stride)


def test_the_limits_are_checked_before_any_frame_is_decoded(demo_predictor, stitched, monkeypatch):
    def no_decoding(self, wanted):
        raise AssertionError("decoded past a limit")

    monkeypatch.setattr(FrameSource, "read", no_decoding)
    monkeypatch.setattr(tl, "MAX_DURATION_S", 5.0)
    with pytest.raises(BudgetError, match=r"This clip is 0:\d\d long; a timeline covers at most 0:05"):
        tl.timeline(demo_predictor, stitched["file"])
    monkeypatch.setattr(tl, "MAX_DURATION_S", 3600.0)
    monkeypatch.setattr(tl, "MAX_WINDOWS", 10)
    with pytest.raises(BudgetError, match=r"makes \d+ windows over this clip; at most 10 are allowed"):
        tl.timeline(demo_predictor, stitched["file"])
    with pytest.raises(VideoError, match="not found"):
        tl.timeline(demo_predictor, stitched["file"].with_name("missing.mp4"))


def test_a_timeline_past_the_request_budget_ends_with_its_message(demo_predictor, stitched, monkeypatch):
    monkeypatch.setattr(demo_predictor, "limits", RequestLimits(budget_s=-1.0))
    with pytest.raises(BudgetError, match="budget"):
        tl.timeline(demo_predictor, stitched["file"])


def test_cli_prints_the_segments(stitched, capsys):
    args = ["predict", str(stitched["file"]), "--timeline", "--checkpoint", str(CHECKPOINTS / "synthetic"),
            "--device", "cpu", "--top-k", "2"]
    assert cli.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "windows of 2 s every 0.5 s" in lines[0]
    shown = [re.fullmatch(r" *[\d.]+ s - +[\d.]+ s  (.+?) +\d+\.\d%", line).group(1) for line in lines[1:]]
    assert shown == [s["action"] for s in stitched["segments"]]
    args[1] = str(EXAMPLE)
    assert cli.main([*args, "--json", "--window", "2.5", "--stride", "1.25"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["window_s"] == 2.5 and out["stride_s"] == 1.25 and out["windows"][0]["evidence"]


@pytest.mark.parametrize("extra, message", [
    (["--stride", "5"], "stride must be"), (["--heatmap", "sclip"], "--heatmap does not go with --timeline"),
    (["--report", "r.txt"], "--report takes an .html path; got 'r.txt'")])
def test_cli_refuses_a_bad_timeline_in_one_line(stitched, capsys, extra, message):
    assert cli.main(["predict", str(stitched["file"]), "--timeline", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_writes_the_timelines_report(stitched, tmp_path, capsys):
    """--timeline --report: one self-contained page, a bar and a row per segment in order, each
    row's still read from its surest window; nothing written over an existing file."""
    out = tmp_path / "timeline.html"
    args = ["predict", str(stitched["file"]), "--timeline", "--checkpoint", str(CHECKPOINTS / "synthetic"),
            "--device", "cpu", "--report", str(out)]
    assert cli.main(args) == 0
    assert f"Report: {out}" in capsys.readouterr().err and not out.with_suffix(".mp4").exists()
    page = out.read_text()
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    rows = re.findall(r"<tr><td>(<img [^>]*>)?</td><td>(\d+)</td><td>([\d.]+)–([\d.]+) s</td><td>([^<]+)</td>", page)
    assert [r[4] for r in rows] == [s["action"] for s in stitched["segments"]]
    assert all(r[0].startswith("<img src='data:image/png;base64,") for r in rows)
    assert page.count("<rect x=") == len(rows) and "<svg" in page
    before = out.read_bytes()
    assert cli.main(args) == 2 and "existing file" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_the_timeline_report_keeps_typed_labels_text_and_says_not_sure():
    hostile = "<img src=x onerror=alert(1)>"
    windows = [TimelineWindow(0, 2, [hostile], [hostile], [0.4], [0, 10, 20], 0.1, True)]
    line = Timeline(windows, tl.segments_of(windows, 2.0), 2.0, 0.5, 8, 8, "custom",
                    VideoInfo("<b>clip</b>.mp4", 50, 25.0, 2.0, 64, 64, "pyav"), "model", False)
    page = timeline_report_html(line)
    assert "<img src=x" not in page and "<b>clip" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "not sure" in page and "url(#unsure)" in page


def test_the_chart_has_a_bar_per_segment_carrying_its_index_and_start(line):
    bars = [t for t in timeline_chart(line).data if t.type == "bar"]
    assert [tuple(b.customdata[0]) for b in bars] == [(i, s.start) for i, s in enumerate(line.segments)]
    assert [b.text[0] for b in bars] == [s.label for s in line.segments]
    assert all(s.label in timeline_markdown(line) for s in line.segments)


def test_typed_labels_stay_text_in_the_chart_and_the_words():
    hostile = "<a href='javascript:alert(1)'>[x](http://evil)</a>"
    windows = [TimelineWindow(0, 2, [hostile], [hostile], [0.9], [], None, False)]
    line = Timeline(windows, tl.segments_of(windows, 2.0), 2.0, 0.5, 8, 8, "custom",
                    VideoInfo("clip.mp4", 50, 25.0, 2.0, 64, 64, "pyav"), "model", False)
    bar = next(t for t in timeline_chart(line).data if t.type == "bar")
    assert "<a" not in bar.text[0] and "&lt;a href=" in bar.text[0] and "<a" not in bar.hovertemplate
    words = timeline_markdown(line)
    assert "<a" not in words and "](http" not in words and "\\[x\\]" in words


def test_overlapping_windows_share_their_frames_at_any_frame_rate(make_full_predictor, tmp_path):
    """At 25 fps half a second is 12.5 frames: windows still share frames, sampled at the same times."""
    clip = ramp_video(tmp_path / "ten_seconds.mp4", 64, 48, frames=250)  # 25 fps
    line = tl.timeline(make_full_predictor(), clip, ["run", "jump"])
    assert len(line.windows) == 17  # 2 s windows every 0.5 s over 10 s
    assert line.frames_decoded == 40  # 4 a second (8 frames a 2 s window), each read once
    assert line.windows[1].frame_indices[:6] == line.windows[0].frame_indices[2:]


@pytest.mark.parametrize("kwargs, message", [
    (dict(segments=1), "2 to 200 segments"), (dict(min_clips=3, max_clips=2), "1 <= min <= max")])
def test_a_bad_stitching_is_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        StitchConfig(**kwargs)


@pytest.mark.parametrize("inference", ["pair", "averaged"])
def test_windows_scored_together_score_as_each_alone(make_full_predictor, tmp_path, inference):
    """Every head on: windows a batch completes share one pass of the heads only where the model keeps
    videos apart; KG-CLIP's batch-averaged triplet inference scores each window alone."""
    import dataclasses

    predictor = make_full_predictor()
    predictor.model.cfg = dataclasses.replace(predictor.model.cfg, triplet_inference=inference)
    predictor.model.eval()
    assert predictor.model.scores_videos_apart is (inference == "pair")
    clip = ramp_video(tmp_path / "six_seconds.mp4", 64, 48, frames=150)  # 25 fps
    line = tl.timeline(predictor, clip, ["run", "jump", "sit"], top_k=3)
    for w in (line.windows[0], line.windows[-1]):
        pred = predictor.predict(clip, ["run", "jump", "sit"], top_k=3, span=(w.start, w.end))
        assert pred.class_names == w.class_names
        assert np.allclose(pred.scores, w.scores, atol=1e-5)
