"""What the region-stage probe's run and its report share: the methods scored, where results go."""

from __future__ import annotations

from pathlib import Path

METHODS = ["cosine", "clearclip", "sclip", "maskclip"]  # the maps cheap enough for every prediction


def result_file(work: Path, steps: int, seed: int) -> Path:
    """The results of one corpus seed's runs of ``steps`` steps: per model, pointing and zero-shot."""
    return work / f"results_{steps}_seed{seed}.json"


def result_files(work: Path, steps: int) -> list[Path]:
    """The results of every seed measured at ``steps`` steps, in seed-name order."""
    return sorted(work.glob(f"results_{steps}_seed*.json"))
