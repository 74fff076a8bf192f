"""A batch's results file (``--out``) and its ranks' part files: whose they are, what is done, the merge.

- ``--out`` is new (checked as every output is, ``outputs.check_new_files``), or this tool's own:
  empty, or every complete line one of its records (``records.FORMAT``). Any other file is
  refused before a model loads and never written: resuming is appending to our own lines only.
- While a run goes, rank ``r`` appends to ``OUT.part<r>`` beside it, one line per clip, flushed
  after every batch, so a killed run loses at most the batch being written. At the end rank 0 merges ``--out`` and every
  part, in the order of the clip list, into a new file renamed over ``--out``, then deletes the
  parts; a kill during the merge leaves ``--out`` whole and the parts for the next run to merge.
- A kill can leave a part's last line half-written: readers ignore a last line without its
  newline, and the rank that appends to that part next cuts it off first, so that clip is
  predicted again, once, and no line is ever glued to a broken one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from kgclip_core.batch.records import FORMAT, parse_line
from kgclip_core.errors import ConfigError
from kgclip_core.outputs import check_new_files, check_writable_folder

PART = ".part"
MERGING = ".merging"
# A results file is read whole (resume, merge); MAX_CLIPS lines of predictions are ~150 MB.
MAX_RESULTS_BYTES = 2**30
_RANK_DIGITS = 6  # the longest part suffix a name must hold: ".part" and a rank below 10**6


class Journal:
    """The results file ``out`` and its part files."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out).expanduser()

    def part(self, rank: int) -> Path:
        """Where rank ``rank`` appends its lines during a run."""
        return self.out.with_name(f"{self.out.name}{PART}{rank}")

    def parts(self) -> list[Path]:
        """The part files beside ``out`` (this run's, or a killed run's), in rank order."""
        prefix = self.out.name + PART
        found = [p for p in self.out.parent.iterdir() if p.name.startswith(prefix) and p.name[len(prefix):].isdigit()]
        return sorted(found, key=lambda p: int(p.name[len(prefix):]))

    def check(self, inputs: Iterable[str | Path]) -> None:
        """Refuse (ConfigError naming --out) a results file this run may not write: not ``.jsonl``,
        a new one that cannot be created, or an existing file or part that is not this tool's own."""
        if self.out.suffix.lower() != ".jsonl":
            raise ConfigError(f"--out takes a .jsonl path (one JSON line per clip); got {str(self.out)!r}.")
        if not self.out.exists():
            extra = len(PART) + _RANK_DIGITS
            check_new_files("--out", [self.out], inputs=inputs, extra_name_bytes=extra)
        else:
            check_writable_folder("--out", self.out.parent)
        self.lines()  # refuses a file that is not ours

    def lines(self) -> list[tuple[dict, str]]:
        """Every complete line of ``out`` and then of each part, with its record."""
        files = ([self.out] if self.out.exists() else []) + self.parts()
        return [item for path in files for item in _read(path)]

    def open_part(self, rank: int) -> TextIO:
        """Rank ``rank``'s part, opened to append, a half-written last line cut off first."""
        path = self.part(rank)
        if path.exists():
            data = path.read_bytes()
            os.truncate(path, data.rfind(b"\n") + 1)
        return open(path, "a", encoding="utf-8")

    def merge(self, order: list[str]) -> int:
        """Write ``out`` anew from itself and every part: one line per clip (the latest, should a
        clip have two: a retried error), in ``order`` of paths (paths not in it last, as found);
        delete the parts. Returns the number of lines written."""
        latest = {record["path"]: line for record, line in self.lines()}
        position = {path: i for i, path in enumerate(order)}
        ranked = sorted(latest.items(), key=lambda item: position.get(item[0], len(position)))
        fresh = self.out.with_name(f"{self.out.name}{MERGING}{os.getpid()}")
        with open(fresh, "x", encoding="utf-8") as f:  # "x": never over anything
            f.writelines(line + "\n" for _, line in ranked)
            f.flush()
            os.fsync(f.fileno())
        parts = self.parts()
        os.replace(fresh, self.out)
        for part in parts:
            part.unlink()
        return len(ranked)


def _read(path: Path) -> list[tuple[dict, str]]:
    """The records of a results or part file; ConfigError when it is not this tool's own."""
    if not path.is_file():
        raise ConfigError(f"--out: {str(path)!r} is not a file; nothing is ever written over it.")
    size = path.stat().st_size
    if size > MAX_RESULTS_BYTES:
        raise ConfigError(f"--out: {str(path)!r} is {size / 2**20:.0f} MB; a results file of at most "
                          f"{MAX_RESULTS_BYTES // 2**20} MB is resumed. Give a new --out.")
    text = path.read_bytes().decode("utf-8", errors="replace")
    complete = text.split("\n")[:-1]  # the piece after the last newline is a kill's half line, or nothing
    out = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        record = parse_line(line)
        if record is None:
            raise ConfigError(f"--out: {str(path)!r} is not a results file of `kgclip predict` (line {number} is not "
                              f"a {FORMAT} record); nothing is ever written over it: give a new --out.")
        out.append((record, line))
    return out
