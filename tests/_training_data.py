"""A tiny labelled dataset for the training tests: list files pointing at the real clips."""

from __future__ import annotations

from pathlib import Path

# Four UCF-101 clips of four classes, each short and quick to decode.
CLASSES = ("Biking", "Punch", "PlayingGuitar", "PushUps")


def write_tiny_dataset(directory: Path, shared_clips: list[dict], corrupt: int = 0) -> dict[str, str]:
    """``labels.csv``, ``train.txt`` and ``val.txt`` (``path label`` relative to the clips
    folder) in ``directory``; ``corrupt`` adds that many unreadable "videos" to train.txt."""
    directory.mkdir(parents=True, exist_ok=True)
    by_label = {r["label"]: r for r in shared_clips}
    root = Path(by_label[CLASSES[0]]["file"]).parents[1]
    (directory / "labels.csv").write_text(
        "id,name\n" + "".join(f"{i},{c}\n" for i, c in enumerate(CLASSES)), encoding="utf-8"
    )
    lines = [f"{by_label[c]['path']} {i}" for i, c in enumerate(CLASSES)]
    (directory / "val.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for k in range(corrupt):
        bad = directory / f"corrupt_{k}.mp4"
        bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)  # a header, then garbage
        lines.append(f"{bad} {k % len(CLASSES)}")
    (directory / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {
        "labels": str(directory / "labels.csv"),
        "train": str(directory / "train.txt"),
        "val": str(directory / "val.txt"),
        "root": str(root),
    }
