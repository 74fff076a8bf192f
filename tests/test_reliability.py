"""Hostile input through every real interface: the library, the command line, checkpoint
loading and the running app (gradio_client and raw HTTP).

Each kind of bad input must end in one clear message (a KGClipError, one CLI line, an app
error), never a traceback shown to the user, never markup made of user text, and the server
must keep answering afterwards. The limits are listed in docs/LIMITS.md.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from _videos import cover_art_mp3, one_frame_gif, ramp_video, write_video
from conftest import REPO
from kgclip_core import cli
from kgclip_core.budget import MAX_CUSTOM_PROMPT_TOKENS, RequestLimits, check_custom_cost, prompt_tokens
from kgclip_core.errors import BudgetError, ConfigError, KGClipError, LabelError, VideoError, WeightsError
from kgclip_core.labels import MAX_LABEL_CHARS, MAX_LABELS, custom_label_set, load_label_set, parse_labels
from kgclip_core.video import read_clip

gradio_client = pytest.importorskip("gradio_client")
from test_app import TINY_APP, save_tiny_checkpoint, start_app, stop_app  # noqa: E402  (one way to start the app, shared)

CUSTOM = "custom (type below)"
PROBE = "http://127.0.0.1:9"  # nothing listens there; the browser test runs a real probe
IMG = f"<img src={PROBE}/x>"
MD_IMG = f"![x]({PROBE}/y)"
HUGE_SET = "\n".join((f"{i} " + "playing guitar while riding a horse and brushing teeth " * 4)[:190]
                     for i in range(MAX_LABELS))


# Hostile files ------------------------------------------------------------------------------


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (64, 48), "blue").save(path)
    return path


def _wav(path: Path) -> Path:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(8000, np.int16).tobytes())
    return path


def _truncated(path: Path, source: Path) -> Path:
    return _bytes(path, source.read_bytes()[:2000])


# name -> (build the file in a folder, what the message must say)
BAD_FILES = {
    "missing": (lambda d, clip: d / "nowhere.mp4", "not found"),
    "directory": (lambda d, clip: d, "directory"),
    "empty": (lambda d, clip: _bytes(d / "empty.mp4", b""), "empty"),
    "text": (lambda d, clip: _bytes(d / "notes.mp4", b"just some notes\n" * 10), "text file"),
    "random bytes": (lambda d, clip: _bytes(d / "noise.mp4", np.random.default_rng(0).bytes(4096)), "not a readable"),
    "truncated header": (lambda d, clip: _truncated(d / "cut.mp4", clip), "readable|no video|frames"),
    "png": (lambda d, clip: _png(d / "photo.png"), "still image"),
    "wav": (lambda d, clip: _wav(d / "sound.wav"), "no video stream"),
    "mp3 with cover art": (lambda d, clip: cover_art_mp3(d / "song.mp3"), "still picture"),
    "one-frame gif": (lambda d, clip: one_frame_gif(d / "still.gif"), "still picture"),
    "8x8 frames": (lambda d, clip: write_video(d / "tiny.mp4", np.zeros((4, 8, 8, 3), np.uint8)), "between 16 and"),
    "not a regular file": (lambda d, clip: Path("/dev/null"), "not a regular file|empty"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_library_refuses_bad_files_with_one_clear_error(kind, tmp_path, real_clip):
    build, message = BAD_FILES[kind]
    with pytest.raises(VideoError, match=f"(?i){message}") as err:
        read_clip(build(tmp_path, real_clip), 8)
    assert "Errno" not in str(err.value)  # FFmpeg's words, not PyAV's error number


@pytest.mark.parametrize("size", [(16, 4096), (4096, 16)])
def test_extreme_aspect_ratios_are_cropped_with_a_note_and_bounded(size, tmp_path):
    clip = read_clip(ramp_video(tmp_path / "thin.mp4", *size), 4, short_side=32)
    assert clip.info.crop is not None and "only the centre" in clip.info.crop_note
    assert max(clip.frames.shape[2:4]) <= 4 * 32


# Labels, budget, top-k through the Predictor -------------------------------------------------


BAD_LABELS = {
    "empty list": ([], "empty"),
    "blank labels": (["  ", "\t"], "empty"),
    "too many": ([f"a{i}" for i in range(MAX_LABELS + 1)], "Too many"),
    "too long": (["x" * (MAX_LABEL_CHARS + 1)], "longer than"),
    "duplicated markup": ([IMG, IMG.upper()], "Duplicated"),
    "punctuation only": (["!!!", "run"], "no letter"),
}


@pytest.mark.parametrize("kind", BAD_LABELS)
def test_bad_label_lists_are_refused(kind):
    labels, message = BAD_LABELS[kind]
    with pytest.raises(LabelError, match=message):
        custom_label_set(labels)


@pytest.mark.parametrize("spec, message", [("no-such-set", "Unknown label set"), ("missing.txt", "does not exist")])
def test_unknown_label_sets_are_refused(spec, message):
    with pytest.raises(LabelError, match=message):
        load_label_set(spec)


def test_a_label_file_that_is_not_text_is_refused(tmp_path):
    with pytest.raises(LabelError, match="UTF-8"):
        load_label_set(str(_bytes(tmp_path / "labels.txt", b"\xff\xfe\x00bad")))


def test_the_custom_set_cost_counts_prompt_tokens_and_refuses_the_huge_set_up_front():
    ucf101 = load_label_set("ucf101")
    assert prompt_tokens(ucf101.display_names) <= MAX_CUSTOM_PROMPT_TOKENS
    check_custom_cost(custom_label_set(ucf101.classes))  # UCF-101's 101 labels, typed, fit
    check_custom_cost(load_label_set("kinetics400"))  # built-in sets always pass (embedded at start)
    with pytest.raises(BudgetError, match="too large to embed.*fewer or shorter labels"):
        check_custom_cost(parse_labels(HUGE_SET))


@pytest.fixture(scope="module")
def predictor(make_full_predictor):
    return make_full_predictor(num_frames=4)


@pytest.mark.parametrize("top_k", [0, -1, 1.5, True, "3"])
def test_bad_top_k_is_refused(predictor, real_clip, top_k):
    with pytest.raises(LabelError, match="top_k"):
        predictor.predict(real_clip, labels=["run", "jump"], top_k=top_k)


def test_odd_but_valid_labels_predict(predictor, real_clip):
    labels = ["a\x00b nul", "שלום rtl", "🏄 surf", "Z̷̢a̸l̶g̵o", IMG, MD_IMG]
    pred = predictor.predict(real_clip, labels=labels, top_k=10 ** 9)  # more than the classes: all of them
    assert sorted(pred.class_names) == sorted(" ".join(label.split()) for label in labels)


def test_a_request_past_its_budget_ends_and_the_predictor_goes_on(predictor, real_clip):
    predictor.limits = RequestLimits(budget_s=0.0)
    try:
        # The clip is decoded in a child process first, which the budget ends at once.
        with pytest.raises(BudgetError, match="ran out of its 0 s budget while decoding the clip"):
            predictor.predict(real_clip, labels=[f"budget test action {i}" for i in range(40)])
        predictor.limits = RequestLimits(budget_s=0.0, isolate_decoding=False)  # the embedding's checks
        with pytest.raises(BudgetError, match="ran out of its 0 s budget while embedding"):
            predictor.predict(real_clip, labels=[f"budget test action {i}" for i in range(40)])
        with pytest.raises(BudgetError, match="too large"):
            predictor.predict(real_clip, labels=parse_labels(HUGE_SET))
    finally:
        predictor.limits = None
    assert len(predictor.predict(real_clip, labels=["run", "jump"], top_k=1).labels) == 1


# Checkpoints ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A tiny checkpoint with every head and its knowledge graph."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


def _edit_json(directory: Path, name: str, edit) -> None:
    path = directory / name
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _node(kg: dict, node_type: str, i: int = 0) -> str:
    return [n["id"] for n in kg["nodes"] if n["type"] == node_type][i]


def _edge(kg: dict, source: str, target: str, relation: str) -> None:
    kg["edges"].append({"source": source, "target": target, "relation": relation})


def _pickled_weights(directory: Path) -> None:
    import torch

    torch.save({"x": torch.zeros(1)}, directory / "model.safetensors")


def _nan_weights(directory: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(directory / "model.safetensors")
    save_file({k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in tensors.items()},
              directory / "model.safetensors")


BAD_CHECKPOINTS = {
    "config not json": (lambda d: (d / "config.json").write_text("{not json"), ConfigError, "config"),
    "config nested deeply": (lambda d: (d / "config.json").write_text("[" * 100_000 + "]" * 100_000), ConfigError,
                             "nested too deeply|at most"),
    "config over 1 MB": (lambda d: (d / "config.json").write_text(" " * (2 << 20) + "{}"), ConfigError, "MB|bytes|at most"),
    "100,000 frames": (lambda d: _edit_json(d, "config.json", lambda c: c["model"].update(num_frames=100_000)),
                       ConfigError, "num_frames"),
    "NaN temperature": (lambda d: _edit_json(d, "config.json", lambda c: c["model"].update(su_temperature=float("nan"))),
                        ConfigError, "su_temperature"),
    "labels as a string": (lambda d: _edit_json(d, "config.json", lambda c: c.update(labels="run")), ConfigError,
                           "labels"),
    "unknown config key": (lambda d: _edit_json(d, "config.json", lambda c: c["model"].update(evil=1)), ConfigError,
                           "evil"),
    "kg action->action edge": (lambda d: _edit_json(d, "kg.json", lambda k: _edge(k, _node(k, "action", 1),
                                                                                _node(k, "action"), "involves")),
                               ConfigError, "joins node types"),
    "kg movement->action cycle": (lambda d: _edit_json(d, "kg.json", lambda k: _edge(k, _node(k, "movement"),
                                                                                   _node(k, "action"), "involves")),
                                  ConfigError, "joins node types"),
    "kg body-part loop": (lambda d: _edit_json(d, "kg.json", lambda k: (
        _edge(k, _node(k, "body_part", 0), _node(k, "body_part", 1), "part_of"),
        _edge(k, _node(k, "body_part", 1), _node(k, "body_part", 0), "part_of"))), ConfigError, "loop"),
    "kg node of wrong type": (lambda d: _edit_json(d, "kg.json", lambda k: k["nodes"][0].update(label=7)), ConfigError,
                              "Knowledge-graph"),
    "kg not node-link": (lambda d: (d / "kg.json").write_text('{"nodes": 5}'), ConfigError, "Knowledge-graph|kg"),
    "pickle as weights": (_pickled_weights, WeightsError, "safetensors"),
    "NaN weights": (_nan_weights, WeightsError, "non-finite"),
    "no weights": (lambda d: (d / "model.safetensors").unlink(), KGClipError, "model.safetensors"),
}


@pytest.mark.parametrize("kind", BAD_CHECKPOINTS)
def test_bad_checkpoints_are_one_clear_error(kind, checkpoint_dir, tmp_path):
    from kgclip_core.predictor import Predictor

    broken = shutil.copytree(checkpoint_dir, tmp_path / "broken")
    spoil, error, message = BAD_CHECKPOINTS[kind]
    spoil(broken)
    with pytest.raises(error, match=f"(?i){message}"):
        Predictor.from_checkpoint(broken, device="cpu")


# The command line ----------------------------------------------------------------------------


TINY = ["--model", "kgclip-tiny", "--random-weights", "--device", "cpu"]


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--top-k", "0", *TINY], "top_k"),
    (["--frames", "100000", *TINY], "num_frames"),
    (["--labels", "no-such-set", *TINY], "Unknown label set"),
    (["--label-list", "run", "RUN", *TINY], "Duplicated"),
    (["--device", "bogus", "--model", "kgclip-tiny", "--random-weights"], "device"),
    (["--pretrained", "/etc/passwd", "--model", "kgclip-tiny"], "passwd|weights"),
])
def test_cli_predict_errors_are_one_line(argv, message, capsys, real_clip):
    code, err = _cli(["predict", str(real_clip), *argv], capsys)
    assert code == 2 and err.startswith("error:") and re.search(message, err, re.I), err
    assert "Traceback" not in err


def test_cli_bad_clip_and_bad_checkpoint_are_one_line(capsys, tmp_path, checkpoint_dir):
    code, err = _cli(["predict", str(_png(tmp_path / "p.png")), *TINY], capsys)
    assert code == 2 and "still image" in err
    broken = shutil.copytree(checkpoint_dir, tmp_path / "broken")
    BAD_CHECKPOINTS["kg body-part loop"][0](broken)
    code, err = _cli(["predict", str(_png(tmp_path / "p.png")), "--checkpoint", str(broken)], capsys)
    assert code == 2 and "loop" in err and "Traceback" not in err


def test_cli_synth_refuses_huge_sizes(capsys, tmp_path):
    code, err = _cli(["synth", "--out", str(tmp_path / "s"), "--per-class", "1", "--size", "100000"], capsys)
    assert code == 2 and "size" in err.lower()


def test_app_started_on_a_bad_checkpoint_says_one_line(checkpoint_dir, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("kgclip_app", REPO / "app.py")
    app_module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "kgclip_app", app_module)  # its dataclasses look their module up
    spec.loader.exec_module(app_module)
    broken = shutil.copytree(checkpoint_dir, tmp_path / "broken")
    BAD_CHECKPOINTS["100,000 frames"][0](broken)
    with pytest.raises(SystemExit) as exit_:
        app_module.main(["--checkpoint", str(broken), "--device", "cpu"])
    assert str(exit_.value).startswith("error: ") and "num_frames" in str(exit_.value)


# The running app -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    log = tmp_path_factory.mktemp("app") / "app.log"
    proc, url = start_app(TINY_APP, log)
    yield proc, url, log
    stop_app(proc)


@pytest.fixture(scope="module")
def client(app):
    return gradio_client.Client(app[1], verbose=False)


def _predict(client, clip, label_set="ucf101", custom="", top_k=3):
    return client.predict(gradio_client.handle_file(str(clip)) if clip else None, label_set, custom, top_k, 0.5,
                          api_name="/predict")


def _post(url: str, payload: dict) -> int:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(request, timeout=30).status
    except urllib.error.HTTPError as err:
        return err.code


def _error(call) -> str:
    with pytest.raises(Exception) as err:
        call()
    return str(err.value)


@pytest.mark.parametrize("kind", ["text", "mp3 with cover art", "one-frame gif", "png", "empty", "8x8 frames"])
def test_app_refuses_bad_uploads_with_a_message(kind, client, tmp_path, real_clip):
    path = BAD_FILES[kind][0](tmp_path, real_clip)
    message = _error(lambda: _predict(client, path))
    assert "Traceback" not in message and str(tmp_path) not in message  # no server folders either
    assert re.search(f"{BAD_FILES[kind][1]}|Invalid file type", message, re.I), message  # ours or Gradio's check


def test_app_shows_extreme_aspect_ratios_bounded(client, tmp_path):
    for size in [(16, 4096), (8192, 16)]:
        outputs = _predict(client, ramp_video(tmp_path / f"thin{size[0]}.mp4", *size))
        details = outputs[-1]
        assert details["video"]["crop"] is not None and any("centre" in w for w in details["warnings"])


@pytest.mark.parametrize("call, message", [
    (lambda c, clip: _predict(c, None), "Upload a video"),
    (lambda c, clip: _predict(c, clip, CUSTOM, f"{IMG}, {IMG}"), "Duplicated"),
    (lambda c, clip: _predict(c, clip, CUSTOM, ""), "empty"),
    (lambda c, clip: _predict(c, clip, CUSTOM, "x" * 300), "longer than"),
    (lambda c, clip: _predict(c, clip, CUSTOM, "\n".join(f"l{i}" for i in range(MAX_LABELS + 1))), "Too many"),
    (lambda c, clip: _predict(c, clip, CUSTOM, HUGE_SET), "too large to embed"),
    (lambda c, clip: _predict(c, clip, "no-such-set"), "not in the list of choices|choices"),
    (lambda c, clip: _predict(c, clip, top_k=1000), "greater than maximum"),
    (lambda c, clip: c.predict(CUSTOM, HUGE_SET, "", api_name="/kg_search"), "too large to embed"),
    (lambda c, clip: c.predict(16, 0.5, api_name="/deep_explanation"), "Recognise a clip first"),
    (lambda c, clip: c.predict(100_000, 0.5, api_name="/deep_explanation"), "greater than maximum"),
    (lambda c, clip: c.predict(None, api_name="/open_in_kg"), "Recognise a clip first"),
    (lambda c, clip: c.predict("x", api_name="/open_in_kg"), "not in the list of choices"),
])
def test_app_answers_bad_requests_with_a_message(app, real_clip, call, message):
    client = gradio_client.Client(app[1], verbose=False)  # a new session: no prediction yet
    text = _error(lambda: call(client, real_clip))
    assert re.search(message, text, re.I), text
    assert "Traceback" not in text and "<img src=" not in text  # a toast renders HTML: user text is escaped


def test_no_user_text_becomes_markup_in_the_apps_outputs(client, real_clip):
    labels = [IMG, MD_IMG, "[link](http://127.0.0.1:9/z)", "<script>alert(1)</script> run"]
    outputs = _predict(client, real_clip, CUSTOM, "\n".join(labels), top_k=4)
    # The details JSON and a dropdown's choices are data, shown as text; everything else is rendered.
    rendered = [o for o in outputs if not (isinstance(o, dict) and ("label_set" in o or "choices" in o))
                and o not in labels]
    text = json.dumps(rendered, default=str)
    assert "<img src=" not in text and "<script>" not in text
    client.predict(CUSTOM, "\n".join(labels), "", api_name="/kg_search")  # the action choices of the typed set
    markdown, html, *_ = client.predict(CUSTOM, "\n".join(labels), labels[1], api_name="/kg_action")
    assert "](http" not in markdown and "<img src=" not in html and "<img src=" not in markdown


@pytest.mark.parametrize("path, payload", [
    ("gradio_api/call/no_such_event", {"data": []}),
    ("gradio_api/run/no_such_event", {"data": []}),
    ("gradio_api/queue/join", {"data": [], "fn_index": 999, "session_hash": "x"}),
])
def test_unknown_endpoints_answer_404(app, path, payload):
    assert _post(app[1] + path, payload) == 404


def test_server_files_are_not_served(app):
    for path in ["gradio_api/file=/etc/passwd", "gradio_api/file=../../../../etc/passwd", "file=/etc/passwd"]:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(app[1] + path, timeout=10)
        assert err.value.code in (403, 404)


def test_a_request_at_the_label_limit_does_not_hold_up_the_others(app, real_clip):
    """The 2,000-label set is refused up front while other clients keep being served."""
    url = app[1]
    results: dict[str, object] = {}

    def call(name: str, label_set: str, custom: str) -> None:
        try:
            results[name] = _predict(gradio_client.Client(url, verbose=False), real_clip, label_set, custom, 1)[-1]
        except Exception as err:  # noqa: BLE001 (the message is checked below)
            results[name] = err

    threads = [threading.Thread(target=call, args=("huge", CUSTOM, HUGE_SET))]
    threads += [threading.Thread(target=call, args=(f"other{i}", "ucf101", "")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert isinstance(results.get("huge"), Exception) and "too large to embed" in str(results["huge"]), results
    assert all(isinstance(results.get(f"other{i}"), dict) for i in range(4)), results


def test_the_server_is_still_up_and_no_error_went_through_our_code_unhandled(app):
    proc, url, log = app
    assert proc.poll() is None and urllib.request.urlopen(url, timeout=10).status == 200
    # Gradio logs the requests its own input checks refused (a slider out of range) with a
    # traceback; none may pass through the app or the library.
    frames = re.findall(r'File "([^"]+)"', log.read_text())
    assert not [f for f in frames if f.endswith("app.py") or "kgclip_core" in f or "kgclip_ui" in f]
