"""The functions the page's events call, one module per area: each calls the library and
shapes its answer for that area's components (in the order ``kgclip_ui.wiring`` lists them)."""
