"""User text as literal text in every output format: the one escaping helper of the app.

Labels are typed by users and read from files, and they reach HTML (graph pages, plot
labels, toasts) and Markdown (descriptions, notes). ``html.escape`` keeps them from becoming
tags, but Markdown has markup of its own: ``![x](http://host/)`` would load an image from
anywhere and ``[text](http://host/)`` would be a live link. So Markdown gets every punctuation
mark with a meaning there backslash-escaped as well.
"""

from __future__ import annotations

import html
import re

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>:])")


def escape_html(text: object) -> str:
    """Text that shows as itself inside HTML (quotes escaped too, so it is safe in attributes)."""
    return html.escape(str(text), quote=True)


def escape_markdown(text: object) -> str:
    """Text that shows as itself inside Markdown, including Markdown's own links and images."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(str(text), quote=False))
