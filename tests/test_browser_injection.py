"""No user text becomes markup, checked where it matters: in a real browser.

Labels made of HTML and Markdown that would fetch from a probe server on loopback (an image,
a script, a link target) go through every path that shows user text: the top-k chart, the
prediction's knowledge-graph view, the Knowledge-graph tab's description and graph, the
predicted-action menu and an error toast. Headless Chromium renders all of it; the probe
must receive no request. Skips without Chromium or Playwright, as tests/test_browser.py.
"""

from __future__ import annotations

import http.server
import threading

import pytest

from test_app import TINY_APP, start_app, stop_app
from test_browser import CHROMIUM, FLAGS, _upload

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
TIMEOUT_MS = 180_000


class _Probe(http.server.BaseHTTPRequestHandler):
    """Records every request; any request at all means user text became live markup."""

    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        self.seen.append(self.path)
        self.send_response(204)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def probe():
    """A loopback HTTP server; yields (base URL, the paths requested so far)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Probe.seen
    server.shutdown()


@pytest.fixture(scope="module")
def labels(probe) -> list[str]:
    """Typed labels that would each reach the probe if rendered as HTML or Markdown."""
    base = probe[0]
    return [f"<img src={base}/img>", f"![x]({base}/md-image)", f"[a link]({base}/md-link) run",
            f"<script>fetch('{base}/script')</script> jump", f"<iframe src={base}/frame></iframe> swim"]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    proc, url = start_app(TINY_APP, tmp_path_factory.mktemp("app") / "app.log")
    yield url
    stop_app(proc)


@pytest.fixture(scope="module")
def page():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


def _type_labels(page, text: str) -> None:
    """Choose typed labels in the Recognise tab, type them and run."""
    page.locator("#label-set input").click()
    page.get_by_role("option", name="custom (type below)").click()
    page.locator("#custom-labels textarea, #custom-labels input").first.fill(text)
    page.locator("#recognise").click()


@pytest.fixture(scope="module")
def clip(shared_clips):
    """A real clip in H.264, which the browser's player shows."""
    return next(r["file"] for r in shared_clips if r["path"] == "stgcn/skateboarding.mp4")


def test_typed_markup_stays_text_in_every_view(app_url, page, probe, labels, clip):
    page.goto(app_url)
    _upload(page, clip)
    _type_labels(page, ", ".join(labels))
    page.locator("#topk-chart .js-plotly-plot .bars path").first.wait_for()
    page.frame_locator("#prediction-kg iframe").locator("#kg canvas").wait_for()
    chart = page.locator("#topk-chart").inner_text()
    assert any(label in chart for label in labels)  # the labels are there, as text

    page.locator("#open-in-kg").click()  # the top action in the Knowledge-graph tab
    description = page.locator("#kg-description h3")
    description.wait_for()
    page.frame_locator("#kg-graph iframe").locator("#kg canvas").wait_for()
    for label in labels:  # every typed action's description and graph
        page.locator("#kg-action input").click()
        page.get_by_role("option", name=label, exact=True).click()
        page.wait_for_function("(label) => document.querySelector('#kg-description h3')?.innerText.startsWith(label)",
                               arg=label)
        assert page.locator("#kg-description img, #kg-description a[href*='127.0.0.1']").count() == 0
    page.wait_for_timeout(2000)  # anything fetched would have arrived by now
    assert probe[1] == []


def test_markup_in_an_error_toast_stays_text(app_url, page, probe, labels, clip):
    page.goto(app_url)
    _upload(page, clip)
    _type_labels(page, f"{labels[0]}, {labels[0]}")  # duplicated: the toast quotes it
    toast = page.locator(".toast-body")
    toast.first.wait_for()
    assert labels[0] in toast.first.inner_text()  # shown as the literal text
    page.wait_for_timeout(2000)
    assert probe[1] == []
    # The control: the page can reach the probe, so no request above means none was made.
    page.evaluate("url => fetch(url, {mode: 'no-cors'}).catch(() => null)", f"{probe[0]}/control")
    page.wait_for_timeout(1000)
    assert probe[1] == ["/control"]
