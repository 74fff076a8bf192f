"""The KG-CLIP web app's user interface (Gradio), run by ``app.py``.

``layout/`` lays out the components of each area of the page, ``handlers/`` holds the
functions its events call, and ``wiring`` assembles the page and connects the two. ``common``
and ``models`` are what every area shares. Every computation, figure and graph view comes
from ``kgclip_core``; nothing here computes an explanation.
"""
