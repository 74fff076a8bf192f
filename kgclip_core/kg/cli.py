"""``kgclip kg``: build, show and count the knowledge graph of a label set."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from kgclip_core.errors import ConfigError, KGClipError
from kgclip_core.kg.graph import KnowledgeGraph
from kgclip_core.kg.parser import parse_label
from kgclip_core.kg.render import concept_tree, graph_html
from kgclip_core.kg.report import builtin_stats, stats_markdown, write_stats_section
from kgclip_core.outputs import check_new_files

LABELS_HELP = "built-in label set (kinetics400, ucf101, hmdb51, kinetics_tps24) or a .txt file, one label a line"


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command; a user error prints its message and exits 2 instead of a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except KGClipError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return run


def _graph(args: argparse.Namespace) -> KnowledgeGraph:
    return KnowledgeGraph.for_label_set(args.label_list or args.labels)


def _build(args: argparse.Namespace) -> int:
    outputs = [Path(p) for p in (args.out, args.html) if p]
    check_new_files("--out/--html", outputs, inputs=[args.labels] if args.labels else [])
    if len(set(outputs)) < len(outputs):
        raise ConfigError("--out and --html name the same file; give each its own path.")
    kg = _graph(args)
    out = kg.save(args.out)
    stats = kg.stats()
    print(f"wrote {out}: {stats['nodes']} nodes, {stats['edges']} edges, {len(kg.actions)} actions {stats['confidence']}")
    if args.html:
        Path(args.html).write_text(graph_html(kg), encoding="utf-8")
        print(f"wrote {args.html}")
    return 0


def _show(args: argparse.Namespace) -> int:
    kg = KnowledgeGraph.for_label_set(args.labels) if args.labels else None
    if kg is None or not kg.has_action(args.label):
        if kg is not None:
            print(f"{args.label!r} is not a class of {args.labels}; building it from the label.\n")
        kg = KnowledgeGraph.for_label(args.label)
    name = kg.graph.nodes[kg.action_node(args.label)]["name"]
    if args.json:
        record = {"action": name, "description": kg.description(name), "confidence": kg.confidence(name),
                  "units": kg.units_of(name), "triples": kg.triples_of(name)}
        print(json.dumps(record, indent=2, ensure_ascii=False))
        return 0
    print(concept_tree(kg, name))
    if kg.confidence(name) == "parsed":
        c = parse_label(args.label)
        print(f"\nparser read: verbs={list(c.verbs)} objects={list(c.objects)} "
              f"body parts={[p for p, _ in c.body_parts]} scenes={list(c.scenes)} modifiers={list(c.modifiers)}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    stats = _graph(args).stats()
    print(json.dumps(stats, indent=2) if args.json else stats_markdown([stats]))
    return 0


def _table(args: argparse.Namespace) -> int:
    stats = builtin_stats()
    if args.write:
        print(f"updated {write_stats_section(args.write, stats)}")
    else:
        print(stats_markdown(stats))
    return 0


def _add_label_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--labels", help=LABELS_HELP)
    group.add_argument("--label-list", nargs="+", help="labels given one by one")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``kg`` and its sub-commands on the ``kgclip`` sub-parsers."""
    kg = subparsers.add_parser("kg", help="build, show and count the knowledge graph of a label set")
    sub = kg.add_subparsers(dest="kg_command", required=True)

    p = sub.add_parser("build", help="write the knowledge graph of a label set as node-link JSON")
    _add_label_args(p)
    p.add_argument("--out", required=True, help="output JSON path")
    p.add_argument("--html", default=None, help="also write the interactive graph page here")
    p.set_defaults(func=_guarded(_build))

    p = sub.add_parser("show", help="the concepts of one action as a tree (any label; unknown ones are parsed)")
    p.add_argument("label", help='an action, e.g. "playing guitar" or "BrushingTeeth"')
    p.add_argument("--labels", default=None, help=LABELS_HELP + " (look the action up there first)")
    p.add_argument("--json", action="store_true", help="print units and triples as JSON")
    p.set_defaults(func=_guarded(_show))

    p = sub.add_parser("stats", help="nodes and edges by type and class coverage of a label set")
    _add_label_args(p)
    p.add_argument("--json", action="store_true", help="print the stats as JSON")
    p.set_defaults(func=_guarded(_stats))

    p = sub.add_parser("table", help="the stats table of every built-in label set (the docs table)")
    p.add_argument("--write", default=None, help="Markdown file whose stats section to rewrite")
    p.set_defaults(func=_guarded(_table))
    return kg
