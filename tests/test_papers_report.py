"""The papers' report is regenerated from the committed rows alone (issue 30): the section in
docs/TESTBED.md is exactly what ``report.write`` makes of ``experiments/papers/rows/``, with no
clips, models or work folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from experiments.papers import common, report

REPO = Path(__file__).resolve().parents[1]


def _section(text: str) -> str:
    return text.split("<!-- begin papers -->", 1)[1].split("<!-- end papers -->", 1)[0]


def test_committed_report_is_what_the_committed_rows_make(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the rows' and the foundation's paths are the repository's
    assert common.RESULTS.is_file(), "the grid's rows are committed"
    copy = tmp_path / "TESTBED.md"
    shutil.copy(REPO / "docs" / "TESTBED.md", copy)
    report.write(copy)
    assert _section(copy.read_text(encoding="utf-8")) == _section((REPO / "docs" / "TESTBED.md").read_text(encoding="utf-8"))


def test_report_keeps_rows_of_another_foundation_out_of_its_tables(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    row = next(iter(common.read_rows(common.RESULTS).values()))
    doc = tmp_path / "doc.md"
    report.write(doc)
    before = _section(doc.read_text(encoding="utf-8"))
    # The same run, all wrong, trained from other weights.
    stranger = {**row, "foundation": "0000dead", "test/synthetic": "0" * len(row["test/synthetic"])}
    rows = tmp_path / "grid.jsonl"
    shutil.copy(common.RESULTS, rows)
    with open(rows, "a", encoding="utf-8") as f:
        f.write(json.dumps(stranger) + "\n")
    monkeypatch.setattr(common, "RESULTS", rows)
    report.write(doc)
    after = _section(doc.read_text(encoding="utf-8"))
    assert "`0000dead` (1 rows)" in after
    # Only the foundation line changed: the stranger's row entered no table.
    changed = [line for a, b in zip(before.splitlines(), after.splitlines()) if a != b for line in (a,)]
    assert len(before.splitlines()) == len(after.splitlines()) and len(changed) == 1 and "Foundation" in changed[0]
