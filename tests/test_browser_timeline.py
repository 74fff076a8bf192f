"""The timeline in a real browser (headless Chromium, as tests/test_browser.py): on the app with
the demo checkpoint, a stitched video of four actions gives its segments, drawn as a chart, in the
right order; a click on a segment fills the result panels with its explanation and moves the
player to its start; its report downloads with the segments in order. Saves screenshots
(``$KGCLIP_SCREENSHOT_DIR``, else a temporary folder)."""

from __future__ import annotations

import re

import pytest

from conftest import REPO
from kgclip_core.synth.stitch import StitchConfig, write_stitched
from test_app import start_app, stop_app
from test_browser import CHROMIUM, FLAGS, _playing, shot_dir  # noqa: F401 (shot_dir is a fixture)

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def stitched(tmp_path_factory) -> dict:
    """A stitched video of four actions (as tests/test_timeline.py's) and its ground truth."""
    folder = tmp_path_factory.mktemp("stitched")
    truth = write_stitched(folder, 1, seed=11, cfg=StitchConfig(segments=4, max_clips=2))[0]
    return {**truth, "file": folder / truth["path"]}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    proc, url = start_app(["--checkpoint", str(REPO / "checkpoints" / "synthetic"), "--device", "cpu"],
                          tmp_path_factory.mktemp("app") / "demo-app.log")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        yield page
        browser.close()
    stop_app(proc)


def test_a_timeline_shows_the_segments_and_a_click_explains_one_and_plays_from_it(page, stitched, shot_dir):
    page.locator("#clip input[type=file]").set_input_files(str(stitched["file"]))
    page.wait_for_function(_playing(stitched["file"].name))
    page.locator("#timeline-run").click()
    bars = page.locator("#timeline-plot .js-plotly-plot .barlayer .point path")
    bars.first.wait_for()
    actions = [s["action"] for s in stitched["segments"]]
    assert bars.count() == len(actions)
    words = page.locator("#timeline-segments").inner_text()
    assert [words.find(a) for a in actions] == sorted(words.find(a) for a in actions) and -1 not in [
        words.find(a) for a in actions]  # every action, in the clip's order
    page.locator("#timeline-box").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(shot_dir / "timeline.png"))

    # A click in the third segment's bar: plotly hears clicks on its drag layer, by position.
    box = bars.nth(2).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("() => document.querySelector('#result-for').innerText.includes('segment 3')")
    found = float(re.search(r"segment 3 \(([\d.]+)-", page.locator("#result-for").inner_text())[1])
    assert abs(found - stitched["segments"][2]["start"]) <= 1.0  # seconds from the true boundary
    assert page.locator("#predicted-action input").input_value() == actions[2]
    played = page.evaluate("() => document.querySelector('#player video').currentTime")
    assert abs(played - found) <= 0.1  # the player went to the segment's start
    page.locator("#heatmaps img").first.wait_for()
    assert page.locator("#heatmaps img").count() == 8  # the segment's window, fully explained
    page.locator("#result-for").scroll_into_view_if_needed()
    page.screenshot(path=str(shot_dir / "timeline_segment_explained.png"), full_page=True)


def test_the_timelines_report_downloads_with_its_segments_in_order(page, stitched, shot_dir):
    """Runs after the test above (same page, its timeline made): the report button gives one HTML
    file whose segment rows name the stitched actions in order."""
    page.locator("#timeline-report").click()
    link = page.locator("#timeline-report-file a[href$='-kgclip-timeline.html']").first
    link.wait_for()
    shown = page.locator("#timeline-report-file").inner_text().replace("\n", "")  # the name wraps before .html
    assert f"{stitched['file'].stem}-kgclip-timeline.html" in shown
    html = page.request.get(link.get_attribute("href")).text()
    rows = re.findall(r"<tr><td>(?:<img [^>]*>)?</td><td>\d+</td><td>[^<]+</td><td>([^<]+)</td>", html)
    assert rows == [s["action"] for s in stitched["segments"]]
    page.locator("#timeline-report-file").scroll_into_view_if_needed()
    page.screenshot(path=str(shot_dir / "timeline_report_button.png"))
