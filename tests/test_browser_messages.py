"""The app's message listener (kgclip_ui.layout.kg.OPEN_ACTION_JS) obeys its own graph frames only:
a page of another site that embeds the app cannot open an action in it (headless Chromium)."""

from __future__ import annotations

import pytest

from test_app import TINY_APP, start_app, stop_app
from test_browser import CHROMIUM, FLAGS

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
MESSAGE = "{kgclip: 'open-action', action: 'skateboarding'}"


@pytest.fixture(scope="module")
def browser_and_url(tmp_path_factory):
    proc, url = start_app(TINY_APP, tmp_path_factory.mktemp("app") / "app.log")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser, url
        browser.close()
    stop_app(proc)


def _shown(frame) -> str:
    """The action the Knowledge-graph tab describes ('' before any)."""
    return frame.evaluate("(document.querySelector('#kg-description h3') || {innerText: ''}).innerText")


def test_a_page_that_embeds_the_app_cannot_open_an_action_in_it(browser_and_url):
    browser, url = browser_and_url
    page = browser.new_page()
    page.set_default_timeout(120_000)
    page.set_content(f"<iframe id='app' src='{url}' width='1200' height='900'></iframe>")
    app = page.frame_locator("#app")
    app.get_by_role("tab", name="Knowledge graph").click()  # the tab's components render when it opens
    app.locator("#kg-open").first.wait_for(state="attached")
    frame = next(f for f in page.frames if f.url.startswith(url))
    page.evaluate(f"document.getElementById('app').contentWindow.postMessage({MESSAGE}, '*')")
    frame.evaluate(f"window.postMessage({MESSAGE}, '*')")  # nor the app's own window posting to itself
    page.wait_for_timeout(3000)  # an obeyed message opens the action within a second
    assert "skateboarding" not in _shown(frame).lower()
    # The same message from one of the app's own frames is obeyed (the graph's clicks use it).
    frame.evaluate("""() => { const f = document.createElement('iframe'); f.id = 'own'; document.body.appendChild(f);
                              f.contentWindow.eval("parent.postMessage(" + %r + ", '*')"); }""" % MESSAGE)
    frame.wait_for_function("(document.querySelector('#kg-description h3') || {innerText: ''})"
                            ".innerText.toLowerCase().startsWith('skateboarding')")
    page.close()
