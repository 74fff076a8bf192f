"""The one escaping helper: user text never becomes HTML or Markdown markup."""

from __future__ import annotations

import markdown_it
import pytest

from kgclip_core.explain import action_markdown
from kgclip_core.explain.text import escape_html, escape_markdown
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.kg.render import action_view

HOSTILE = [
    "<img src=http://127.0.0.1:9/x onerror=alert(1)>",
    "![x](http://127.0.0.1:9/pixel.png)",
    "[click me](http://127.0.0.1:9/)",
    "<script>alert(1)</script>",
    "**bold** _it_ `code` # heading | table |",
    "a\\](http://127.0.0.1:9/)",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_escape_renders_as_the_literal_text(text):
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(escape_markdown(text))
    assert "<img" not in rendered and "<a " not in rendered and "<script" not in rendered
    assert "<strong>" not in rendered and "<em>" not in rendered and "<code>" not in rendered
    # What a reader sees is the text itself.
    plain = markdown_it.MarkdownIt("commonmark").render(escape_markdown(text))
    import html
    import re
    assert html.unescape(re.sub(r"<[^>]+>", "", plain)).strip() == text


def test_html_escape_keeps_tags_and_attributes_as_text():
    assert escape_html('<img src="x" onerror=a>') == "&lt;img src=&quot;x&quot; onerror=a&gt;"


def test_a_typed_label_with_markdown_stays_text_in_the_action_view():
    label = "![x](http://127.0.0.1:9/p.png) [go](http://127.0.0.1:9/)"
    kg = KnowledgeGraph.for_label_set([label, "run"])
    text = action_markdown(action_view(kg, kg.actions[0]))
    rendered = markdown_it.MarkdownIt("commonmark").render(text)
    assert "<img" not in rendered and "<a " not in rendered
