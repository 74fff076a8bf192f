"""The layers of the code (docs/DESIGN.md): imports run downward only, and nothing imports in a circle.

Every ``import`` statement counts, including those written inside functions (an import moved into
a function to dodge a cycle is still a cycle: the code on both sides depends on the other). The
imports are read from the source with ``ast``, not by importing, so a lazy import cannot hide.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("kgclip_core", "kgclip_ui", "experiments")

# kgclip_core's parts from the bottom up: a part may import the parts of lower layers only (not
# its own layer's, nor a higher one's). A subpackage is one part. Keep in step with DESIGN.md.
LAYERS = (
    ("errors",),
    ("labels", "prompts", "video", "skip_init", "text_cache", "text_prefix", "outputs", "isolated"),
    ("backbone", "kg", "budget", "video_out"),
    ("model", "heatmaps", "prediction"),
    ("class_inputs", "class_cache", "evidence", "readout"),
    ("contrast",),
    ("predictor",),
    ("explain", "training", "warmup", "timeline"),
    ("report", "synth", "batch"),
    ("cli", ""),  # "" is the package itself (kgclip_core/__init__.py)
)


def modules(package: str) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its own name)."""
    found = {}
    for path in (REPO / package).rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports anywhere in its source (a ``from
    package import submodule`` counts as the submodule)."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package ``level`` steps up
                base = ".".join([*here[:len(here) - node.level + 1], *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # a name inside a module: the module
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    """Import edges between the modules of every first-party package, whoever imports whom."""
    known = {name: path for package in PACKAGES if (REPO / package).is_dir() for name, path in modules(package).items()}
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def part(module: str) -> str:
    """The part of kgclip_core a module belongs to: its subpackage or its own module name."""
    return module.split(".")[1] if "." in module else ""


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
    a = tmp_path / "a.py"
    a.write_text("import b\n")
    b = tmp_path / "b.py"
    b.write_text("def f():\n    from a import x\n    return x\n")
    known = {"a": a, "b": b}
    assert cycles({name: imports_of(name, path, known) for name, path in known.items()}) == [["a", "b"]]


def test_no_import_cycle_in_the_project():
    assert cycles(graph()) == []


def test_the_library_imports_no_app_code():
    library = {name: edges for name, edges in graph().items() if name.split(".")[0] == "kgclip_core"}
    outside = {name: sorted(e for e in edges if not e.startswith("kgclip_core")) for name, edges in library.items()}
    assert not {name: e for name, e in outside.items() if e}


def test_every_import_in_the_library_runs_down_the_layers():
    layer_of = {p: i for i, names in enumerate(LAYERS) for p in names}
    upward = []
    for name, edges in graph().items():
        if name.split(".")[0] != "kgclip_core":
            continue
        source = part(name)
        assert source in layer_of, f"{name}: add its part {source!r} to LAYERS (and docs/DESIGN.md)"
        for target in edges:
            if target.startswith("kgclip_core") and part(target) != source and layer_of[part(target)] >= layer_of[source]:
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_each_experiments_run_and_report_never_import_each_other():
    """An experiment's run writes rows and its report reads them (experiments/__init__.py): the
    report regenerates from committed rows alone, without the code that trains."""
    edges = graph()
    experiments = {name.split(".")[1] for name in edges if name.startswith("experiments.") and name.count(".") >= 1}
    crossed = []
    for experiment in experiments:
        prefix = f"experiments.{experiment}"
        for name, targets in edges.items():
            if name.startswith(prefix) and name.rpartition(".")[2] in ("run", "report"):
                other = "report" if name.endswith(".run") else "run"
                crossed += [f"{name} -> {t}" for t in targets if t.startswith(prefix) and t.rpartition(".")[2] == other]
    assert experiments and crossed == []


@pytest.mark.parametrize("layer", LAYERS)
def test_the_layer_table_names_real_parts(layer):
    parts = {part(name) for name in modules("kgclip_core")}
    assert set(layer) <= parts
