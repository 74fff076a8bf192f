"""The explanations report is regenerated from the committed rows alone (issue 29): the section in
docs/EXPLAIN.md is exactly what ``report.text`` makes of ``experiments/explanations/rows/``, and
rows of a detector that no longer ships stay out of its tables."""

from __future__ import annotations

from pathlib import Path

from kgclip_core.explain.maps import FIRST_MAP_RULE
from experiments import jsonl
from experiments.explanations import report
from experiments.explanations.common import CLIPS, DETECTORS, FIRST_MAPS, ROWS, SECTION

REPO = Path(__file__).resolve().parents[1]


def _section(text: str) -> str:
    return text.split(f"<!-- begin {SECTION} -->\n", 1)[1].split(f"<!-- end {SECTION} -->", 1)[0].rstrip()


def test_committed_report_is_what_the_committed_rows_make():
    committed = _section((REPO / "docs" / "EXPLAIN.md").read_text(encoding="utf-8"))
    assert committed == report.text(jsonl.read(ROWS / CLIPS), jsonl.read(ROWS / DETECTORS),
                                    jsonl.read(ROWS / FIRST_MAPS)).rstrip()


def test_rows_of_an_earlier_detector_stay_out_of_the_tables():
    clips, detectors = jsonl.read(ROWS / CLIPS), jsonl.read(ROWS / DETECTORS)
    shipped = {r["model"]: r["detector"] for r in detectors}
    assert any(r["detector"] != shipped[r["model"]] for r in clips), "the first detector's rows are kept"
    current = [r for r in clips if r["detector"] == shipped[r["model"]]][::20]  # a sample keeps it quick
    # The same rows, every mark wrong, under a detector trained earlier: the tables do not move.
    stale = [{**r, "detector": "0000dead", "concepts": [[*c[:3], not c[3], c[4]] for c in r.get("concepts", [])]}
             for r in current]
    earlier = [{**r, "detector": "0000dead"} for r in detectors]
    maps = jsonl.read(ROWS / FIRST_MAPS)
    assert report.text(stale + current, earlier + detectors, maps) == report.text(current, detectors, maps)


def test_first_maps_of_another_rule_stay_out_of_the_tables():
    clips, detectors, maps = jsonl.read(ROWS / CLIPS), jsonl.read(ROWS / DETECTORS), jsonl.read(ROWS / FIRST_MAPS)
    current = [r for r in maps if r["rule"] == FIRST_MAP_RULE]
    assert current, "the shipped rule's first maps are committed"
    # The same clips under another rule, every map missing its part: the tables do not move.
    other = [{**r, "rule": "an earlier rule", "first_map": {**r["first_map"], "hits": [False] * len(r["first_map"]["hits"])},
              "candidates": [{**c, "hits": [False] * len(c["hits"])} for c in r["candidates"]]}
             for r in current[::20] if "first_map" in r]
    assert report.text(clips, detectors, other + current) == report.text(clips, detectors, current)
