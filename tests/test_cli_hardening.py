"""Issue 31, the command line and loading: every abuse is one line, exit 2, and nothing written.

Each refusal comes before any model work, so these run in seconds: the clip given to ``predict``
is never opened (a few bytes stand in for it), and the broken checkpoints are refused from
their headers and JSON lists.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from kgclip_core import cli
from kgclip_core.errors import ConfigError
from kgclip_core.model import checkpoint

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "synthetic"
TINY = ["--model", "kgclip-tiny", "--random-weights", "--device", "cpu"]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def _refused(argv: list[str], folder: Path, capsys, match: str) -> str:
    """Run ``kgclip argv``: exit 2, one ``error:`` line matching ``match``, ``folder`` untouched."""
    before = _snapshot(folder)
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err, err
    assert match.lower() in err.lower(), err
    assert _snapshot(folder) == before
    return err


@pytest.fixture
def clip(tmp_path, monkeypatch) -> Path:
    """A stand-in input clip (never read: every refusal comes first), with the cache env restored."""
    monkeypatch.delenv("KGCLIP_CACHE_MAX_MB", raising=False)
    path = tmp_path / "myclip.mp4"
    path.write_bytes(b"not decoded")
    return path


# Item 5: a user's file is never overwritten ---------------------------------------------------


def test_report_never_replaces_the_input_clip(clip, tmp_path, capsys):
    _refused(["predict", str(clip), "--report", str(tmp_path / "myclip.html"), *TINY], tmp_path, capsys,
             "input of this command")


def test_report_never_replaces_an_unrelated_file(clip, tmp_path, capsys):
    (tmp_path / "notes.mp4").write_text("my notes")
    _refused(["predict", str(clip), "--report", str(tmp_path / "notes.html"), *TINY], tmp_path, capsys,
             "existing file")


def test_kg_build_never_replaces_a_file(tmp_path, capsys):
    (tmp_path / "mine.json").write_text("{}")
    _refused(["kg", "build", "--labels", "kinetics_tps24", "--out", str(tmp_path / "mine.json")], tmp_path, capsys,
             "existing file")


def test_synth_refuses_a_folder_with_files(tmp_path, capsys):
    (tmp_path / "train.txt").write_text("mine")
    _refused(["synth", "--out", str(tmp_path), "--per-class", "1"], tmp_path, capsys, "already holds files")


# Item 8: each abuse is one line --------------------------------------------------------------


def test_report_in_proc(clip, tmp_path, capsys):
    _refused(["predict", str(clip), "--report", "/proc/r.html", *TINY], tmp_path, capsys, "cannot write")


def test_report_video_path_is_a_folder(clip, tmp_path, capsys):
    (tmp_path / "r.mp4").mkdir()
    _refused(["predict", str(clip), "--report", str(tmp_path / "r.html"), *TINY], tmp_path, capsys, "folder")


def test_report_name_of_255_bytes(clip, tmp_path, capsys):
    name = "r" * 250 + ".html"  # 255 bytes: the video's temporary name would be 260
    _refused(["predict", str(clip), "--report", str(tmp_path / name), *TINY], tmp_path, capsys, "too long")


@pytest.mark.parametrize("argv, match", [
    (["--seed", "-1"], "seed"),
    (["--seed", str(2**70)], "seed"),
    (["--corpus-size", "200000", "--frames", "32"], "78.6 GB"),
    (["--batch-size", "4096"], "batch_size"),
])
def test_pretrain_bounds(argv, match, tmp_path, capsys):
    _refused(["pretrain", "--out", str(tmp_path / "run"), *argv], tmp_path, capsys, match)


def test_cache_max_mb_inf(clip, tmp_path, capsys):
    _refused(["cache", "--labels", "synthetic", "--checkpoint", str(CHECKPOINT), "--cache-max-mb", "inf"],
             tmp_path, capsys, "--cache-max-mb")


def test_kg_build_into_proc(tmp_path, capsys):
    _refused(["kg", "build", "--labels", "kinetics_tps24", "--out", "/proc/nope"], tmp_path, capsys, "cannot write")


@pytest.mark.parametrize("argv, match", [
    (["--clips", "0"], "--clips"), (["--batch-size", "0"], "--batch-size"), (["--clips", "100000"], "--clips"),
])
def test_eval_bounds(argv, match, tmp_path, capsys):
    listing = tmp_path / "val.txt"
    listing.write_text("a.mp4 0\n")
    _refused(["eval", "--checkpoint", str(CHECKPOINT), "--list", str(listing), *argv], tmp_path, capsys, match)


def test_cuda_without_a_gpu_says_so(clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    _refused(["predict", str(clip), "--model", "kgclip-tiny", "--device", "cuda"], tmp_path, capsys,
             "no CUDA device")


# Item 7: slow loads and unread headers --------------------------------------------------------


def _copy_checkpoint(tmp_path: Path) -> Path:
    return shutil.copytree(CHECKPOINT, tmp_path / "ckpt")


def test_kg_fanout_is_refused_before_the_graph_is_built(tmp_path, capsys):
    broken = _copy_checkpoint(tmp_path)
    kg = json.loads((broken / "kg.json").read_text())
    action = next(n["id"] for n in kg["nodes"] if n["type"] == "action")
    kg["nodes"] += [{"id": f"movement:m{i}", "type": "movement", "label": f"m {i}"} for i in range(300)]
    kg["edges"] += [{"source": action, "target": f"movement:m{i}", "relation": "involves"} for i in range(300)]
    (broken / "kg.json").write_text(json.dumps(kg))
    _refused(["predict", str(tmp_path / "clip.mp4"), "--checkpoint", str(broken)], tmp_path, capsys,
             "at most 256 edges")


def _add_header_tensor(path: Path, name: str, shape: list[int]) -> None:
    """Declare one more float32 tensor in a safetensors file's header; its data is a sparse hole,
    so a 40 GB tensor takes no disk."""
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header, data = json.loads(raw[8:8 + size]), raw[8 + size:]
    nbytes = 4 * shape[0]
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + nbytes]}
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + data)
        f.truncate(8 + len(encoded) + len(data) + nbytes)


def test_an_extra_40_gb_tensor_is_refused_from_the_header(tmp_path, monkeypatch):
    broken = _copy_checkpoint(tmp_path)
    _add_header_tensor(broken / "model.safetensors", "evil", [10**10])

    def never(*args, **kwargs):
        raise AssertionError("a tensor was read before the header was checked")

    monkeypatch.setattr(checkpoint, "load_file", never)
    with pytest.raises(ConfigError, match="1 unexpected.*evil"):
        checkpoint.load(broken)


# Item 8 leftovers: eval --out, the app's --device ---------------------------------------------


@pytest.mark.parametrize("existing", ["val.json", "val_confusion.png"])
def test_eval_out_never_replaces_an_existing_report_file(existing, tmp_path, capsys):
    listing = tmp_path / "val.txt"
    listing.write_text("a.mp4 0\n")
    out = tmp_path / "reports"
    out.mkdir()
    (out / existing).write_text("the user's own file")
    _refused(["eval", "--checkpoint", str(CHECKPOINT), "--list", str(listing), "--out", str(out)], tmp_path, capsys,
             "existing file")


def test_eval_out_that_is_a_file_is_refused(tmp_path, capsys):
    listing = tmp_path / "val.txt"
    listing.write_text("a.mp4 0\n")
    _refused(["eval", "--checkpoint", str(CHECKPOINT), "--list", str(listing), "--out", str(listing)], tmp_path,
             capsys, "cannot create folder")


def test_app_cuda_without_a_gpu_says_so_before_any_weights(tmp_path, monkeypatch, capsys):
    import app

    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    monkeypatch.setattr(app, "load_models", lambda args: pytest.fail("weights were loaded"))
    with pytest.raises(SystemExit) as stop:
        app.main(["--device", "cuda", *TINY[:3]])
    assert str(stop.value).startswith("error: --device cuda: this machine has no CUDA device")
    assert "weights" not in str(stop.value) and "internet" not in str(stop.value)
