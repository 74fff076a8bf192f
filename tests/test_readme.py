"""The README's commands, run as written on a clean clone, leave ``git status`` clean.

What they write must land under git-ignored folders (``runs/``). The quick start's
``kgclip predict ... --report`` is run for real, in a fresh repository that has the project's
``.gitignore`` and the files the command reads; the other commands' output paths are checked
against the ``.gitignore`` with ``git check-ignore``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="no git")
# Stands for the installed console script (the same entry point), so the command text runs unchanged.
KGCLIP = 'kgclip() { "$KGCLIP_PYTHON" -m kgclip_core.cli "$@"; }'


def _commands() -> list[str]:
    """The README's shell commands: the lines of its bash blocks, comments dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    lines = (line.split("  #")[0].strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line]


def _git(folder: Path, *args: str) -> str:
    return subprocess.run([GIT, "-C", str(folder), *args], check=True, capture_output=True, text=True).stdout


def test_the_quick_start_report_command_leaves_git_status_clean(tmp_path):
    command = next(c for c in _commands() if c.split("&&")[-1].split()[:2] == ["kgclip", "predict"] and "--report" in c)
    # A clean clone as far as this command goes: the project's .gitignore, and what it reads (linked), committed.
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(REPO / ".gitignore", clone)
    for folder in ("assets", "checkpoints"):
        (clone / folder).symlink_to(REPO / folder)
    _git(clone, "init", "-q")
    _git(clone, "add", "-A")
    _git(clone, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "clone")
    env = {**os.environ, "KGCLIP_PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    run = subprocess.run(["bash", "-c", f"{KGCLIP}\n{command}"], cwd=clone, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    report = Path(shlex.split(command)[shlex.split(command).index("--report") + 1])
    assert (clone / report).is_file() and (clone / report.with_suffix(".mp4")).is_file()
    assert _git(clone, "status", "--porcelain", "--ignored=no") == ""


def test_every_readme_command_writes_under_ignored_folders():
    outputs = []
    for command in _commands():
        words = shlex.split(command.replace("[", "").replace("]", ""))
        outputs += [words[i + 1] for i, word in enumerate(words[:-1]) if word in ("--out", "--report")]
    assert len(outputs) >= 5  # predict's reports, kg build, synth, pretrain
    ignored = subprocess.run([GIT, "-C", str(REPO), "check-ignore", "--no-index", *outputs], capture_output=True,
                             text=True).stdout.split()
    assert sorted(ignored) == sorted(outputs)
