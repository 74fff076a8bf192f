"""Batch recognition (``kgclip predict FOLDER|LIST --out OUT.jsonl``, kgclip_core/batch): one line per
clip, a broken clip's line says why and the rest are done, a killed run resumes without doing a clip
twice, two torchrun ranks write what one process writes, and wrong arguments are refused first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kgclip_core.batch import BatchOptions, run_batch
from kgclip_core.batch.journal import Journal
from kgclip_core.cli import main
from kgclip_core.training.distributed import DistEnv, shard
from kgclip_core.video import read_clip

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "checkpoints" / "synthetic"
ACTIONS = ["squat", "clap hands", "kick right leg", "wave right hand", "jump in place", "raise both arms"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Six rendered clips of six synthetic actions (the demo model's world), sorted by path."""
    from kgclip_core.synth.dataset import write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, per_class=1, seed=5, classes=ACTIONS)
    return sorted((out / "videos").rglob("*.mp4"))


def link_folder(folder: Path, clips: list[Path], copies: int = 1) -> Path:
    """A folder of links to ``clips`` (``copies`` names each), as a user's folder of clips."""
    folder.mkdir()
    for k in range(copies):
        for clip in clips:
            (folder / f"{k:02d}_{clip.name}").symlink_to(clip)
    return folder


def broken(path: Path, clip: Path) -> Path:
    """The first 3,000 bytes of a clip: a truncated file no decoder can read."""
    path.write_bytes(clip.read_bytes()[:3000])
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run(folder: Path, out: Path, *extra: str) -> int:
    return main(["predict", str(folder), "--out", str(out), "--checkpoint", str(CHECKPOINT), "--device", "cpu",
                 "--top-k", "3", *extra])


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "timing"} for r in records]


def test_a_batch_predicts_each_clip_as_predict_does(demo_predictor, clips):
    decoded = [read_clip(c, 8, short_side=demo_predictor.cfg.short_side) for c in clips[:3]]
    batch = demo_predictor.predict_batch(decoded, top_k=3)
    for clip, got in zip(clips, batch):
        alone = demo_predictor.predict(clip, top_k=3)
        assert got.labels == alone.labels and got.scores == pytest.approx(alone.scores, abs=1e-5)
        assert [(e.text, e.present) for e in got.evidence] == [(e.text, e.present) for e in alone.evidence]
        assert (got.unsure, got.fit) == (alone.unsure, pytest.approx(alone.fit, abs=1e-5))
    assert len({p.labels[0] for p in batch}) > 1  # the clips are told apart, not one answer for all


def test_a_broken_clip_gets_an_error_line_and_the_rest_are_done(clips, tmp_path, capsys):
    folder = link_folder(tmp_path / "clips", clips)
    bad = broken(folder / "03_broken.mp4", clips[0])
    (folder / "notes.txt").write_text("not a clip\n")  # not a video: not listed
    out = tmp_path / "preds.jsonl"
    assert run(folder, out, "--batch-size", "2", "--workers", "1") == 0
    records = read_lines(out)
    assert [r["path"] for r in records] == sorted(str(p) for p in folder.glob("*.mp4"))
    (error,) = [r for r in records if "error" in r]
    assert error["path"] == str(bad) and "\n" not in error["error"] and error["error"]
    done = [r for r in records if "error" not in r]
    assert len(done) == len(clips)
    for r in done:
        assert len(r["labels"]) == len(r["scores"]) == 3 and r["scores"] == sorted(r["scores"], reverse=True)
        assert r["evidence"]["shown"] == len(r["evidence"]["present"]) <= r["evidence"]["of"]
        assert isinstance(r["unsure"], bool) and r["timing"]["decode_s"] > 0 and r["timing"]["model_s"] > 0
    assert not Journal(out).parts()
    assert "1 could not be" in capsys.readouterr().err

    # The clip repaired, a rerun with --retry-errors predicts it, and only it.
    bad.unlink()
    bad.symlink_to(clips[0])
    before = {r["path"]: r for r in done}
    assert run(folder, out, "--retry-errors", "--workers", "0") == 0
    again = read_lines(out)
    assert [r["path"] for r in again] == [r["path"] for r in records] and not any("error" in r for r in again)
    assert [r for r in again if r["path"] in before] == list(before.values())  # byte for byte: not redone
    assert "1 predicted now" in capsys.readouterr().err


def test_a_killed_batch_rerun_predicts_no_clip_twice(clips, tmp_path, demo_predictor):
    folder = link_folder(tmp_path / "clips", clips, copies=5)  # 30 clips, one at a time: a few seconds
    out = tmp_path / "preds.jsonl"
    cmd = [sys.executable, "-m", "kgclip_core.cli", "predict", str(folder), "--out", str(out), "--checkpoint",
           str(CHECKPOINT), "--device", "cpu", "--top-k", "3", "--batch-size", "1", "--workers", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    part = Journal(out).part(0)
    try:
        deadline = time.monotonic() + 120
        while not (part.exists() and part.read_text().count("\n") >= 3) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not out.exists() and proc.returncode == -signal.SIGKILL  # killed mid-run, before the merge
    with open(part, "a", encoding="utf-8") as f:  # and as if mid-write: half a line
        f.write('{"format": "kgclip-batch/1", "path": "')
    first = part.read_text(encoding="utf-8").splitlines()[:-1]
    assert 3 <= len(first) < 30

    opts = BatchOptions(top_k=3, workers=0, device="cpu")
    summary = run_batch(str(folder), out, lambda device: demo_predictor, None, opts, frames=8)
    assert (summary.clips, summary.skipped, summary.predicted) == (30, len(first), 30 - len(first))
    lines = out.read_text(encoding="utf-8").splitlines()
    paths = [json.loads(line)["path"] for line in lines]
    assert paths == sorted(str(p) for p in folder.iterdir())  # every clip once, in the folder's order
    assert set(first) <= set(lines)  # the killed run's lines kept as they were
    assert not part.exists()


def test_two_torchrun_ranks_write_what_one_process_writes(clips, tmp_path):
    listed = tmp_path / "clips.txt"
    rel = [os.path.relpath(c, tmp_path) for c in clips] + ["missing/clip.mp4"]
    listed.write_text("# clips to label\n" + "\n".join(rel) + "\n", encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["predict", str(listed), "--checkpoint", str(CHECKPOINT), "--device", "cpu", "--top-k", "3",
            "--batch-size", "2", "--workers", "1"]
    ranks, one = tmp_path / "two.jsonl", tmp_path / "one.jsonl"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "kgclip_core.cli", *args, "--out", str(ranks)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main([*args, "--out", str(one)]) == 0
    a, b = without_timing(read_lines(ranks)), without_timing(read_lines(one))
    assert [r["path"] for r in a] == [r["path"] for r in b] == [str(tmp_path / p) for p in rel]
    assert "Video not found" in a[-1]["error"] and a[-1] == b[-1]
    for x, y in zip(a[:-1], b[:-1]):
        assert x["scores"] == pytest.approx(y["scores"], abs=1e-5)  # batches differ: float sums in another order
        assert {**x, "scores": None} == {**y, "scores": None}
    assert not Journal(ranks).parts()
    assert "(rank 0 of 2)" in proc.stderr and "7 clips, 0 already there, 7 predicted now (1 could not be" in proc.stderr


def test_one_clip_with_out_is_a_batch_of_one(clips, tmp_path, demo_predictor):
    out = tmp_path / "one.jsonl"
    assert run(clips[0], out, "--workers", "0") == 0
    (record,) = read_lines(out)
    alone = demo_predictor.predict(clips[0], top_k=3)
    assert record["path"] == str(clips[0]) and record["labels"] == alone.labels
    assert record["evidence"]["present"] == [e.text for e in alone.evidence if e.present]


def test_every_clip_falls_in_exactly_one_rank_share():
    for count in (0, 1, 5, 7):
        for world in (1, 2, 3, 8):
            shares = [list(shard(count, DistEnv(r, world, r, None))) for r in range(world)]
            assert sorted(i for s in shares for i in s) == list(range(count))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.parametrize("case, expected", [
    ("no-out", "give --out FILE.jsonl"),
    ("not-jsonl", "--out takes a .jsonl path"),
    ("foreign-out", "is not a results file of `kgclip predict`"),
    ("report", "--report is for one clip"),
    ("empty-folder", "holds no video file"),
    ("too-many", "names more than 3 clips"),
    ("bad-workers", "--workers must be a whole number in [0, 64]"),
    ("too-many-frames", "decoded frames in memory"),
])
def test_wrong_arguments_are_refused_in_one_line_before_any_model_loads(case, expected, clips, tmp_path, capsys,
                                                                        monkeypatch):
    folder = link_folder(tmp_path / "clips", clips)
    out = tmp_path / "preds.jsonl"
    # A checkpoint that does not exist: a refusal that came after loading would name it instead.
    args = ["predict", str(folder), "--out", str(out), "--checkpoint", str(tmp_path / "no-such-checkpoint")]
    if case == "no-out":
        args = args[:2] + args[4:]
    elif case == "not-jsonl":
        args[args.index(str(out))] = str(tmp_path / "preds.mp4")
    elif case == "foreign-out":
        out.write_text('{"a": 1}\n', encoding="utf-8")
    elif case == "report":
        args += ["--report", str(tmp_path / "r.html")]
    elif case == "empty-folder":
        (tmp_path / "empty").mkdir()
        args[1] = str(tmp_path / "empty")
    elif case == "too-many":
        monkeypatch.setattr("kgclip_core.batch.sources.MAX_CLIPS", 3)
    elif case == "bad-workers":
        args += ["--workers", "65"]
    elif case == "too-many-frames":
        args += ["--batch-size", "256", "--frames", "64"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err
    if case == "foreign-out":
        assert out.read_text(encoding="utf-8") == '{"a": 1}\n'  # never written over


def test_a_resume_with_other_options_is_refused(clips, tmp_path, capsys):
    folder = link_folder(tmp_path / "clips", clips[:2])
    out = tmp_path / "preds.jsonl"
    assert run(folder, out, "--workers", "0") == 0
    kept = out.read_text(encoding="utf-8")
    assert main(["predict", str(folder), "--out", str(out), "--checkpoint", str(CHECKPOINT), "--device", "cpu",
                 "--top-k", "2", "--workers", "0"]) == 2
    assert "top_k 3 (now 2)" in capsys.readouterr().err and out.read_text(encoding="utf-8") == kept
