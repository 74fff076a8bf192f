"""The ``kgclip`` command: ``cache`` fills a chosen, capped cache folder; progress goes to stderr."""

from pathlib import Path

import pytest

from kgclip_core.cli import main
from kgclip_core.text_cache import TextEmbeddingCache

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "synthetic"


@pytest.fixture
def restore_cache_env(monkeypatch, tmp_path):
    """``configure_cache`` sets the process's cache variables: monkeypatch puts them back afterwards."""
    monkeypatch.setenv("KGCLIP_CACHE_DIR", str(tmp_path / "default-cache"))
    monkeypatch.delenv("KGCLIP_CACHE_MAX_MB", raising=False)


def test_cache_command_fills_the_given_folder_then_reads_it(tmp_path, capsys, restore_cache_env):
    folder = tmp_path / "space-data"
    args = ["cache", "--labels", "synthetic", "--checkpoint", str(CHECKPOINT), "--cache-dir", str(folder),
            "--cache-max-mb", "64"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    files = sorted((folder / "text").glob("*.safetensors"))
    assert files and "(cap 64 MB)" in out
    done, total = err.strip().rsplit("\r", 1)[-1].split(": ")[1].split()[0].split("/")
    assert done == total and int(total) > 24  # prompts of 24 classes and more
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert main(args) == 0
    assert sorted((folder / "text").glob("*.safetensors")) == files  # read back, nothing new written
    assert all(f.stat().st_mtime_ns >= stamps[f] for f in files)  # and marked as used
    assert TextEmbeddingCache(folder / "text").entries()


def test_cache_max_mb_must_be_positive(tmp_path, capsys, restore_cache_env):
    assert main(["cache", "--labels", "synthetic", "--checkpoint", str(CHECKPOINT), "--cache-max-mb", "0"]) == 2
    assert "--cache-max-mb" in capsys.readouterr().err


def test_predict_shows_label_set_progress(tmp_path, capsys, real_clip, restore_cache_env):
    assert main(["predict", str(real_clip), "--checkpoint", str(CHECKPOINT), "--cache-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "label set:" in err and "texts embedded" in err and out.count("\n") >= 2


def test_predict_writes_a_report_and_its_heatmap_video(tmp_path, capsys, restore_cache_env):
    from kgclip_core.video import probe_video

    clip = Path(__file__).parents[1] / "assets" / "examples" / "throw_ball_overhand.mp4"
    out = tmp_path / "report.html"
    assert main(["predict", str(clip), "--checkpoint", str(CHECKPOINT), "--cache-dir", str(tmp_path),
                 "--report", str(out)]) == 0
    printed, err = capsys.readouterr()
    top = printed.splitlines()[1].split(".", 1)[1].rsplit(maxsplit=1)[0].strip()  # " 1. label   12.3%"
    assert top in out.read_text(encoding="utf-8") and "report.mp4" in err
    assert probe_video(tmp_path / "report.mp4").num_frames == probe_video(clip).num_frames
    assert main(["predict", str(clip), "--checkpoint", str(CHECKPOINT), "--report", str(tmp_path / "r.pdf")]) == 2
    assert ".html" in capsys.readouterr().err
