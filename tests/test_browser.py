"""The app in a real browser: headless Debian Chromium driven by Playwright, on a real clip.

Uses the system's Chromium (``apt-get install chromium``); Playwright never downloads a
browser here. Skips when either is missing. Saves screenshots of the result and of the
Knowledge-graph tab to a temporary folder, or to ``$KGCLIP_SCREENSHOT_DIR`` (set it to
``assets`` to refresh the README's pictures).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from _videos import recoded
from conftest import REPO
from test_app import TINY_APP, start_app, stop_app

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
RESULT_TIMEOUT_MS = 180_000
# Whether a heatmap picture has a colour bar: a column in its right half, inferno's top colour
# (the peak) in its first row and its bottom colour (0) in its last (tolerant of lossy image formats).
COLOUR_BAR = """(img) => {
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const px = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
  const near = (a, b) => a.every((v, i) => Math.abs(v - b[i]) < 40);
  for (let x = c.width - 1; x > c.width / 2; x--) {
    if (near(px(x, 1), [252, 255, 164]) && near(px(x, c.height - 2), [0, 0, 4])) return true;
  }
  return false;
}"""
EXAMPLES = REPO / "assets" / "examples"


def _playing(name: str) -> str:
    """A condition: the player has loaded a file named after ``name`` (the upload or its copy)."""
    return (f"() => {{ const v = document.querySelector('#player video'); return v && v.readyState >= 2 "
            f"&& v.videoWidth > 0 && decodeURIComponent(v.currentSrc).includes({name!r}); }}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    proc, url = start_app([*TINY_APP, "--labels", "kinetics_tps24"], tmp_path_factory.mktemp("app") / "app.log")
    yield url
    stop_app(proc)


@pytest.fixture(scope="module")
def shot_dir(tmp_path_factory) -> Path:
    target = os.environ.get("KGCLIP_SCREENSHOT_DIR")
    return Path(target) if target else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def clip(shared_clips):
    """A real Kinetics clip in H.264 (the browser's player shows it; UCF-101's .avi it cannot)."""
    return next(r["file"] for r in shared_clips if r["path"] == "stgcn/skateboarding.mp4")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Clips browsers do not play as they are: a GIF and an MPEG-4 part 2 .avi (as UCF-101's)."""
    folder = tmp_path_factory.mktemp("clips")
    return {"gif": recoded(EXAMPLES / "raise_right_arm.mp4", folder / "raise_right_arm.gif", "gif"),
            "avi": recoded(EXAMPLES / "wave_right_hand.mp4", folder / "wave_right_hand.avi", "mpeg4", "avi")}


def _upload(page, clip: Path) -> None:
    """Upload a clip (clearing the one before, as a user does) and wait until the player can show it."""
    clear = page.locator("#clip button[aria-label=Clear]")
    if clear.count():
        clear.click()
    page.locator("#clip input[type=file]").set_input_files(str(clip))
    page.wait_for_function(_playing(clip.name))


@pytest.fixture(scope="module")
def page():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.set_default_timeout(RESULT_TIMEOUT_MS)
        yield page
        browser.close()


def test_upload_a_clip_and_see_every_explanation(app_url, page, clip, shot_dir):
    page.goto(app_url)
    page.locator("#random-weights-warning").wait_for()  # the banner is visible
    _upload(page, clip)  # an H.264 mp4: the player shows the upload itself
    assert page.locator("#player-note").inner_text().strip() == ""
    page.locator("#recognise").click()

    bars = page.locator("#topk-chart .js-plotly-plot .bars path")
    bars.first.wait_for()
    assert bars.count() == 5  # top-5 bars drawn by plotly
    heatmaps = page.locator("#heatmaps img")
    heatmaps.first.wait_for()
    assert heatmaps.count() == 8
    # Each heatmap picture carries its colour bar (explain.overlay.heatmap_panel): a column near the right
    # edge running from the colormap's top colour (the frame's peak) down to its bottom colour (0).
    page.wait_for_function("() => { const i = document.querySelector('#heatmaps img'); return i && i.complete && i.naturalWidth > 0; }")
    assert heatmaps.first.evaluate(COLOUR_BAR)
    table = page.locator("#units-table [role=grid]")
    table.wait_for()
    assert table.get_attribute("aria-rowcount") == "9"  # a header and the su_top_k = 8 selected units
    # Which units a random-weight model selects varies; that each row names a unit type does not.
    table_text = page.locator("#units-table").inner_text()
    assert any(t in table_text for t in ("body part", "part state", "movement", "motion", "object", "scene"))
    assert page.locator("#unit-timeline .js-plotly-plot").count() == 1
    assert "usual level" in page.locator("#units-note").inner_text()  # how the selection ranks, explained
    # "Why this action": the top action's own concepts, each marked shown or not, and how to read it.
    evidence = page.locator("#evidence-table [role=grid]")
    evidence.wait_for()
    assert int(evidence.get_attribute("aria-rowcount")) >= 2
    assert any(mark in page.locator("#evidence-table").inner_text() for mark in ("✓", "✗"))
    assert "three quarters" in page.locator("#evidence-note").inner_text()
    graph = page.frame_locator("#prediction-kg iframe")
    graph.locator("#kg canvas").wait_for()  # vis-network drew the graph inside the sandboxed iframe
    assert "action" in graph.locator(".legend").inner_text()
    # Chromium does not paint off-screen sandboxed iframes: bring the graph into view, let it settle.
    page.locator("#prediction-kg").scroll_into_view_if_needed()
    page.wait_for_timeout(6000)
    page.screenshot(path=str(shot_dir / "screenshot.png"), full_page=True)
    assert (shot_dir / "screenshot.png").stat().st_size > 10_000


def test_predicted_action_opens_in_the_knowledge_graph_tab(app_url, page, shot_dir):
    action = page.locator("#open-in-kg")
    if not page.locator("#heatmaps img").count():
        pytest.skip("needs the prediction of the previous test")
    predicted = page.locator("#predicted-action input").input_value()
    action.click()
    description = page.locator("#kg-description h3")
    description.wait_for()
    assert description.inner_text().startswith(predicted)  # the tab opened on the predicted action
    assert "Body-part movements" in page.locator("#kg-description").inner_text()
    assert page.locator("#kg-action input").input_value() == predicted
    page.frame_locator("#kg-graph iframe").locator("#kg canvas").wait_for()
    page.locator("#kg-graph").scroll_into_view_if_needed()
    page.wait_for_timeout(6000)
    page.screenshot(path=str(shot_dir / "screenshot_kg.png"), full_page=True)
    assert (shot_dir / "screenshot_kg.png").stat().st_size > 10_000


def _shot(page, name: str) -> None:
    """A screenshot of the whole page in /tmp/shots14 (or $KGCLIP_SHOTS14), to look at."""
    folder = Path(os.environ.get("KGCLIP_SHOTS14", "/tmp/shots14"))
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_a_gif_upload_plays_and_is_recognised(app_url, page, clips):
    page.goto(app_url)
    _upload(page, clips["gif"])
    assert "playable copy" in page.locator("#player-note").inner_text()
    page.locator("#recognise").click()
    page.locator("#heatmaps img").first.wait_for()
    assert "raise_right_arm.gif" in page.locator("#result-for").inner_text()
    _shot(page, "1_gif_recognised")


def test_an_avi_upload_plays(app_url, page, clips):
    _upload(page, clips["avi"])
    assert page.locator("#heatmaps img").count() == 0  # the GIF's results went with it
    page.evaluate("document.querySelector('#player video').play()")
    page.wait_for_function("document.querySelector('#player video').currentTime > 0.3")
    assert "wave_right_hand.avi" in page.locator("#player-note").inner_text()
    _shot(page, "2_avi_playing")


def test_two_quick_clicks_on_two_clips_give_the_second_clips_result(app_url, page, clips):
    run = page.locator("#recognise")
    run.click()  # the .avi still loaded
    page.wait_for_function("document.querySelector('#recognise').disabled")
    assert run.inner_text() == "Recognising…"
    _shot(page, "3a_first_run_in_progress")
    # A new clip while the first runs: an example, picked by its caption.
    page.locator("#clip button[aria-label=Clear]").click()
    page.wait_for_function("!document.querySelector('#player video')")
    page.locator("#examples .thumbnail-item", has_text="punch with right arm").click()
    page.wait_for_function(_playing("punch_with_right_arm.mp4"))
    page.wait_for_function("!document.querySelector('#recognise').disabled")
    run.click()
    page.wait_for_function("document.querySelector('#result-for').innerText.includes('punch_with_right_arm.mp4')")
    page.locator("#heatmaps img").first.wait_for()
    page.wait_for_timeout(3000)  # anything of the first clip's run would have arrived by now
    assert "wave_right_hand" not in page.locator("#result-for").inner_text()
    assert run.inner_text() == "Recognise" and run.is_enabled()
    _shot(page, "3b_second_clips_result")


def test_opacity_box_redraws_the_heatmaps(page):
    first = page.locator("#heatmaps img").first.get_attribute("src")
    box = page.locator("#opacity input[type=number]")
    box.fill("0.9")
    box.press("Enter")
    page.wait_for_function(f"document.querySelector('#heatmaps img').getAttribute('src') !== {first!r}")


def test_report_download(page, tmp_path):
    page.locator("#make-report").click()
    link = page.locator("#report-files a").first
    link.wait_for()
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert saved.name == "punch_with_right_arm-kgclip-report.html" and text.count("data:image/png;base64,") == 8
    assert page.locator("#report-files").inner_text().count(".mp4") == 1
    _shot(page, "4_report_ready")
    report = page.context.browser.new_page(viewport={"width": 1000, "height": 1200})
    report.goto(saved.as_uri())
    report.screenshot(path=str(Path(os.environ.get("KGCLIP_SHOTS14", "/tmp/shots14")) / "4b_report_page.png"),
                      full_page=True)
    report.close()


def test_a_single_custom_label_is_one_clear_message(page):
    page.locator("#custom-labels textarea, #custom-labels input").first.fill("juggling")
    # The menu follows the typing.
    page.wait_for_function("document.querySelector('#label-set input').value === 'custom (type below)'")
    page.locator("#custom-labels textarea, #custom-labels input").first.press("Enter")
    toast = page.locator(".toast-body")
    toast.first.wait_for()
    assert "single label always gets 100%" in toast.first.inner_text()
    page.wait_for_timeout(1000)
    pills = page.evaluate("[...document.querySelectorAll('.error')].filter(e => !e.closest('.toast-wrap, .toast-body'))"
                          ".map(e => e.closest('[id]').id)")
    assert pills == ["topk-chart"]  # the error mark on the chart only, not on every panel
    page.wait_for_function("!document.querySelector('#recognise').disabled")  # ready for the next try
    assert page.locator("#recognise").inner_text() == "Recognise"
    _shot(page, "5_single_label_message")


def _value(page, selector: str, expected: str) -> None:
    """Wait until the input under ``selector`` shows ``expected``."""
    page.wait_for_function(f"document.querySelector({selector + ' input'!r}).value === {expected!r}")


def _graph_drawn(page) -> None:
    """Wait for the KG tab's graph, bring it into view and let Chromium paint the iframe."""
    page.frame_locator("#kg-graph iframe").locator("#kg canvas").wait_for()
    page.locator("#kg-graph").scroll_into_view_if_needed()
    page.wait_for_timeout(4000)


def test_knowledge_graph_tab_with_custom_labels_points_to_curated_actions(page):
    page.get_by_role("tab", name="Knowledge graph").click()
    box = page.locator("#kg-custom textarea, #kg-custom input").first
    box.fill("tennis serve, forehand")
    box.press("Enter")  # Enter builds the graph of the typed labels
    _value(page, "#kg-action", "tennis serve")
    page.wait_for_function("document.querySelector('#kg-description h3').innerText.includes('parsed')")
    looks_like = page.locator("#kg-looks-like")
    looks_like.get_by_text("playing tennis (kinetics400)").wait_for()
    _graph_drawn(page)
    _shot(page, "6_kg_custom_labels")
    looks_like.get_by_text("playing tennis (kinetics400)").click()
    _value(page, "#kg-action", "playing tennis")
    page.wait_for_function("document.querySelector('#kg-description h3').innerText.startsWith('playing tennis')")
    _graph_drawn(page)
    _shot(page, "7_kg_curated_action_opened")


def test_a_click_on_a_related_action_in_the_graph_opens_it(page):
    frame = page.locator("#kg-graph iframe").element_handle().content_frame()
    related = frame.evaluate("nodes.get().filter(n => n.action && n.level > 0).map(n => n.action)")
    assert related and page.locator("#kg-related").get_by_text(related[0]).count() == 1  # also listed below
    node = f"action:{related[0]}"
    at = frame.evaluate(f"network.canvasToDOM(network.getPositions([{node!r}])[{node!r}])")
    canvas = page.frame_locator("#kg-graph iframe").locator("#kg canvas").bounding_box()
    page.mouse.click(canvas["x"] + at["x"], canvas["y"] + at["y"])
    _value(page, "#kg-action", related[0])
    page.wait_for_function(f"document.querySelector('#kg-description h3').innerText.startsWith({related[0]!r})")
    _graph_drawn(page)
    _shot(page, "8_related_action_opened_by_a_click")


def test_knowledge_graph_on_a_phone(app_url, page):
    phone = page.context.browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    phone.goto(app_url)
    phone.get_by_role("tab", name="Knowledge graph").click()
    _graph_drawn(phone)
    box = phone.frame_locator("#kg-graph iframe").locator("#kg canvas").bounding_box()
    assert box["width"] > 250 and box["height"] > 250
    scale = phone.locator("#kg-graph iframe").element_handle().content_frame().evaluate("network.getScale()")
    assert scale >= 0.75  # readable text; the view pans instead of shrinking
    _shot(phone, "9_kg_on_a_phone")
    phone.close()
