"""Tables of knowledge-graph statistics, for the terminal and for docs/KNOWLEDGE_GRAPH.md.

``kgclip kg table --write docs/KNOWLEDGE_GRAPH.md`` rewrites the part of that page between
the markers below with the current numbers of every built-in label set.
"""

from __future__ import annotations

from pathlib import Path

from kgclip_core.errors import ConfigError
from kgclip_core.kg.graph import NODE_TYPES, RELATIONS, KnowledgeGraph
from kgclip_core.kg.knowledge import curated_label_sets, load_knowledge
from kgclip_core.kg.parser import knowledge_from_label
from kgclip_core.labels import builtin_label_sets

BEGIN = "<!-- kg-stats:begin -->"
END = "<!-- kg-stats:end -->"


def _row(cells: list[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def stats_markdown(stats: list[dict]) -> str:
    """Markdown tables (nodes by type, edges by relation, coverage) for several label sets."""
    names = [s["label_set"] for s in stats]
    lines = ["**Nodes by type**", ""]
    lines += _table(["type", *names], [[t, *(s["nodes_by_type"][t] for s in stats)] for t in NODE_TYPES])
    lines += [_row(["**all**", *(s["nodes"] for s in stats)]), "", "**Edges by relation**", ""]
    lines += _table(["relation", *names], [[r, *(s["edges_by_relation"][r] for s in stats)] for r in RELATIONS])
    lines += [_row(["**all**", *(s["edges"] for s in stats)]), "", "**Share of classes with at least one ...**", ""]
    coverage = [
        ("body-part movement", "movement"),
        ("motion", "motion"),
        ("object or motion", "object_or_motion"),
        ("scene", "scene"),
    ]
    lines += _table(["", *names], [[title, *(f"{s['coverage'][key]:.1%}" for s in stats)] for title, key in coverage])
    curated = [s["confidence"].get("curated", 0) for s in stats]
    parsed = [s["confidence"].get("parsed", 0) for s in stats]
    lines += [_row(["classes with a knowledge-file entry", *curated]), _row(["classes parsed from the label", *parsed])]
    agreement = [s.get("parser_agreement") for s in stats]
    if any(agreement):
        rows = [
            ("parser finds a motion", "with_motion", "classes"),
            ("... among the curated motions", "motion_agrees", "with_motion"),
            ("parser finds an object", "with_object", "classes"),
            ("... among the curated objects", "object_agrees", "with_object"),
        ]
        lines += ["", "**The parser on class names alone, against the curated entries**", ""]
        lines += _table(["", *names], [[title, *(_ratio(a, key, of) for a in agreement)] for title, key, of in rows])
    return "\n".join(lines)


def _ratio(counts: dict | None, key: str, of: str) -> str:
    if not counts:
        return "-"
    share = counts[key] / counts[of] if counts[of] else 0.0
    return f"{counts[key]}/{counts[of]} ({share:.0%})"


def parser_agreement(label_set: str) -> dict:
    """How often the parser, reading a class name alone, agrees with the curated entry.

    Counts the classes where the parser finds a motion (an object) and, of those, the ones
    whose motion (object) is among the curated entry's: a check of what custom labels get.
    """
    counts = {"classes": 0, "with_motion": 0, "motion_agrees": 0, "with_object": 0, "object_agrees": 0}
    for name, entry in load_knowledge(label_set).items():
        parsed = knowledge_from_label(name)
        curated_objects = set(entry.objects) | {m.object for m in entry.movements}
        counts["classes"] += 1
        counts["with_motion"] += bool(parsed.motions)
        counts["motion_agrees"] += bool(set(parsed.motions) & set(entry.motions))
        counts["with_object"] += bool(parsed.objects)
        counts["object_agrees"] += bool(set(parsed.objects) & curated_objects)
    return counts


def builtin_stats() -> list[dict]:
    """Stats of the graph of every built-in label set, with the parser's agreement added."""
    stats = []
    for name in builtin_label_sets():
        record = KnowledgeGraph.for_label_set(name).stats()
        if name in curated_label_sets():
            record["parser_agreement"] = parser_agreement(name)
        stats.append(record)
    return stats


def write_stats_section(path: str | Path, stats: list[dict]) -> Path:
    """Replace the text between the stats markers of a Markdown file with fresh tables."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if BEGIN not in text or END not in text:
        raise ConfigError(f"{str(path)!r} has no '{BEGIN}' ... '{END}' markers to write the table between.")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{stats_markdown(stats)}\n{END}{tail}", encoding="utf-8")
    return path
