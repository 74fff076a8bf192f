"""The page's components, one module per area; each function lays out a part of the page
and returns its components for ``kgclip_ui.wiring`` to connect. No events are set up here."""
