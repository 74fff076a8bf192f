"""The take-away report and heatmap video of a prediction on a real clip (tiny model, every head)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from conftest import REPO
from kgclip_core.report import VIDEO_MAX_FRAMES, report_html, write_report
from kgclip_core.video import probe_video, read_clip

CLIP = REPO / "assets" / "examples" / "wave_right_hand.mp4"


class _Page(HTMLParser):
    """Collects a page's images, scripts, links and text."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    return parsed


@pytest.fixture(scope="module")
def prediction(make_full_predictor):
    return make_full_predictor().predict(CLIP, labels=["wave right hand", "<b>clap</b> hands", "hop"], top_k=3)


def test_report_is_self_contained_with_the_frames_and_the_label(prediction):
    raw = report_html(prediction, "regions", "region 2", opacity=0.6)
    page = _parse(raw)
    text = " ".join(page.text)
    assert len(page.images) == len(prediction.frames) == 8
    assert all(src.startswith("data:image/png;base64,") for src in page.images)  # nothing to fetch
    assert "script" not in page.tags and "a" not in page.tags and "iframe" not in page.tags
    assert prediction.labels[0] in text and "wave_right_hand.mp4" in text and "region 2" in text
    assert "<b>clap</b> hands" in text and "<b>clap" not in raw  # a typed label stays text
    assert prediction.model in text and "RANDOM weights" in text  # the model, honestly named


def test_report_files_open_and_the_video_shows_the_clip(prediction, tmp_path):
    html_path, video_path = write_report(prediction, tmp_path / "report.html")
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    info = probe_video(video_path)
    assert info.num_frames == min(probe_video(CLIP).num_frames, VIDEO_MAX_FRAMES)
    frames = read_clip(video_path, num_frames=4, short_side=None).frames[0]
    assert frames.shape[1:3] == prediction.frames.shape[1:3] and frames.std() > 0
