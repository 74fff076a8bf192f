"""The app, started as a user starts it, called through gradio_client on real clips and bad input.

Two servers: the default app on random tiny weights (the offline demo, with its warning) and
the app on a tiny fine-tuned checkpoint (every head on, so regions and word alignment exist).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from _videos import cover_art_mp3, one_frame_gif, phone_video, ramp_video, recoded
from conftest import REPO

gradio_client = pytest.importorskip("gradio_client")
psutil = pytest.importorskip("psutil")

TINY_APP = ["--model", "kgclip-tiny", "--random-weights"]
RSS_LIMIT = 3 * 1024**3  # the tiny app with a few sessions' predictions stays far below this


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(args: list[str], log: Path, timeout: float = 180) -> tuple[subprocess.Popen, str]:
    """Start ``python app.py ARGS`` on a free port; returns the process and its URL once it answers."""
    port = _free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args], cwd=REPO,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app exited early:\n{log.read_text()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(1)
    proc.kill()
    pytest.fail(f"app did not start:\n{log.read_text()}")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    proc, url = start_app(TINY_APP, tmp_path_factory.mktemp("app") / "app.log")
    yield proc, url
    stop_app(proc)


@pytest.fixture(scope="module")
def app_url(app):
    return app[1]


def save_tiny_checkpoint(directory: Path) -> Path:
    """A checkpoint of a tiny model with every head (MRA, SU, decoder, WTI, triplets) and its KG."""
    import torch

    from kgclip_core.kg.graph import KnowledgeGraph
    from kgclip_core.model import checkpoint
    from kgclip_core.model.config import ModelConfig
    from kgclip_core.model.kgclip import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(backbone="kgclip-tiny", pretrained=None, decoder_heads=2, triplet_heads=2, num_regions=4)
    kg = KnowledgeGraph.for_label_set("kinetics_tps24")
    checkpoint.save(build_model(cfg, random_backbone=True, device="cpu"), directory, kg=kg.to_json(),
                    labels=list(kg.actions))
    return directory


@pytest.fixture(scope="module")
def checkpoint_url(tmp_path_factory):
    """The app on a checkpoint of a tiny model with every head (MRA, SU, decoder, WTI, triplets)."""
    directory = save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")
    proc, url = start_app(["--checkpoint", str(directory), "--device", "cpu"],
                          tmp_path_factory.mktemp("app") / "ckpt-app.log")
    yield url
    stop_app(proc)


def _client(url: str):
    return gradio_client.Client(url, verbose=False)


def _predict(client, clip, label_set="ucf101", custom="", top_k=3):
    return client.predict(gradio_client.handle_file(str(clip)), label_set, custom, top_k, 0.5, api_name="/predict")


def _image_files(gallery) -> list[Path]:
    return [Path(item["image"]) for item in gallery]


# the default (offline demo) app ---------------------------------------------------------------


def test_page_shows_random_weights_warning(app_url):
    page = urllib.request.urlopen(app_url + "config", timeout=10).read().decode()
    assert "RANDOM weights" in page


def test_predict_endpoint_on_real_clip(app_url, real_clip):
    (chart, kind, which, gallery, evidence, evidence_note, units, timeline, alignment, note, kg_html, contrast_note,
     rival, contrast, action, result_for, details) = _predict(_client(app_url), real_clip)
    from kgclip_core.explain.text import escape_markdown

    assert escape_markdown(real_clip.name) in result_for and "ucf101" in result_for  # the clip it belongs to
    assert len(details["labels"]) == 3 and details["label_set"] == "ucf101" and details["random_weights"] is True
    assert chart["type"] == "plotly" and "Top-3 of ucf101" in chart["plot"]
    # First the map of the most telling concept of the top action (the evidence below), then
    # regions, units and the compared rival's own concepts.
    assert [c[0] for c in kind["choices"]] == ["evidence", "regions", "units", "rival"] and kind["value"] == "evidence"
    assert which["value"] != "all concepts" and len(which["choices"]) == len(details["evidence"]) + 1
    assert len(gallery) == 8 and all(p.is_file() for p in _image_files(gallery))
    assert "a concept of the top action" in gallery[0]["caption"]
    # Why the top action and not the runner-up, first under the prediction.
    assert rival["value"] == details["contrast"]["rival"] == details["labels"][1]
    assert f"and not {details['contrast']['rival']}" in contrast_note
    assert contrast["headers"] == ["needed by", "shown", "concept", "type", "score"]
    assert len(contrast["data"]) == len(details["contrast"]["own"]) + len(details["contrast"]["rival_own"])
    assert units["headers"][:2] == ["unit", "type"] and len(units["data"]) == len(details["units"])
    # The top class's own concepts, each checked against the clip, with how to read the marks.
    assert evidence["headers"][:2] == ["shown", "concept"] and len(evidence["data"]) == len(details["evidence"])
    assert {row[0] for row in evidence["data"]} <= {"✓", "✗"} and "three quarters" in evidence_note
    assert timeline["type"] == "plotly" and alignment is None and "WTI" in note["value"]
    assert kg_html.startswith("<iframe") and "vis.Network" in kg_html
    assert action["value"] == details["class_names"][0]


def test_heatmap_and_deep_explanation_endpoints_use_the_sessions_prediction(app_url, real_clip):
    client = _client(app_url)
    with pytest.raises(Exception, match="(?i)recognise a clip first"):
        client.predict(8, 0.5, api_name="/deep_explanation")
    *_, details = _predict(client, real_clip)
    unit = f"{details['units'][0]['text']} ({details['units'][0]['type'].replace('_', ' ')})"
    which, gallery = client.predict("units", 0.5, api_name="/heatmap_kind")
    assert which["value"] == "all units" and len(gallery) == 8
    single = client.predict("units", unit, 0.8, api_name="/heatmaps")
    assert len(single) == 8 and _image_files(single)[0].read_bytes() != _image_files(gallery)[0].read_bytes()
    concept = details["evidence"][0]["text"]
    which, _ = client.predict("evidence", 0.5, api_name="/heatmap_kind")
    name = next(c[0] for c in which["choices"] if c[0].startswith(concept))
    one = client.predict("evidence", name, 0.5, api_name="/heatmaps")
    assert len(one) == 8 and f'"{concept}", a concept of the top action' in one[0]["caption"]
    attribution, note = client.predict(4, 0.5, api_name="/deep_explanation")
    assert len(attribution) == 8 and details["labels"][0] in note and "4 steps" in note


def test_report_endpoint_gives_the_html_report_and_the_heatmap_video(app_url, tmp_path):
    from kgclip_core.video import probe_video

    client = _client(app_url)
    with pytest.raises(Exception, match="(?i)recognise a clip first"):
        client.predict(None, None, 0.5, api_name="/report")
    clip = REPO / "assets" / "examples" / "punch_with_right_arm.mp4"
    *_, details = _predict(client, clip)
    # The maps shown after a prediction: the top action's concepts.
    html_file, video_file = (Path(f) for f in client.predict("evidence", "all concepts", 0.7, api_name="/report"))
    page = html_file.read_text(encoding="utf-8")
    assert html_file.name == "punch_with_right_arm-kgclip-report.html" and details["labels"][0] in page
    assert page.count("data:image/png;base64,") == 8 and "all concepts" in page
    assert probe_video(video_file).num_frames == probe_video(clip).num_frames


def test_knowledge_graph_endpoints(app_url, real_clip):
    client = _client(app_url)
    found = client.predict("ucf101", "", "guitar", api_name="/kg_search")
    assert found["value"] == "PlayingGuitar"
    text, page, related, looks_like = client.predict("ucf101", "", "PlayingGuitar", api_name="/kg_action")
    assert looks_like["choices"] == []  # curated: nothing to point to
    assert "Playing Guitar" in text and "guitar" in text and page.startswith("<iframe")
    other = related["choices"][0][1]  # a related action opens like a pick, the search cleared
    query, picked, _ = client.predict("ucf101", "", other, "", api_name="/open_action")
    assert query == "" and picked["value"] == other
    assert client.predict("ucf101", "", None, "no such action", api_name="/open_action")[2] == ""
    typed = client.predict("custom (type below)", "juggling knives, <b>x</b>", "", api_name="/kg_search")
    assert [c[1] for c in typed["choices"]] == ["juggling knives", "<b>x</b>"]
    text, *_ = client.predict("custom (type below)", "juggling knives, <b>x</b>", "<b>x</b>", api_name="/kg_action")
    client.predict("custom (type below)", "juggling knives, tennis serve", "", api_name="/kg_search")
    *_, looks_like = client.predict("custom (type below)", "juggling knives, tennis serve", "tennis serve",
                                    api_name="/kg_action")
    assert looks_like["choices"][0] == ["playing tennis (kinetics400)", "kinetics400:playing tennis"]
    label_set, custom, _, picked = client.predict("kinetics400:playing tennis", api_name="/open_curated")
    assert (label_set, custom, picked["value"]) == ("kinetics400", "", "playing tennis")
    assert "<b>" not in text
    *_, details = _predict(client, real_clip)
    label_set, custom, query, action = client.predict(details["class_names"][1], api_name="/open_in_kg")
    assert label_set == "ucf101" and action["value"] == details["class_names"][1]
    text, page, *_ = client.predict(label_set, custom, action["value"], api_name="/kg_action")
    assert details["labels"][1] in text and page.startswith("<iframe")


def test_gif_and_avi_play_through_an_h264_copy_and_are_recognised(app_url, tmp_path):
    from kgclip_core.video import probe_video
    from kgclip_core.video_out import is_playable

    client = _client(app_url)
    example = REPO / "assets" / "examples" / "wave_right_hand.mp4"
    player, note, *cleared = client.predict(gradio_client.handle_file(str(example)), api_name="/show_clip")
    assert Path(player).name == example.name and note == ""  # an H.264 mp4 plays as it is
    assert cleared[3] == [] and cleared[-2] == ""  # the previous clip's frames and notes are gone
    for clip in (recoded(example, tmp_path / "wave.gif", "gif"), recoded(example, tmp_path / "wave.avi", "mpeg4", "avi")):
        player, note, *_ = client.predict(gradio_client.handle_file(str(clip)), api_name="/show_clip")
        copy = Path(player)
        assert copy.suffix == ".mp4" and is_playable(copy) and probe_video(copy).num_frames >= 30
        assert "playable copy" in note and clip.name in note and "/" not in note  # no server folders
        *_, details = _predict(client, clip)
        assert details["video"]["file"] == clip.name and len(details["labels"]) == 3


def test_custom_labels_from_the_textbox(app_url, real_clip):
    client = _client(app_url)
    *_, details = _predict(client, real_clip, "custom (type below)", "pitching a baseball\nswimming", 2)
    assert sorted(details["labels"]) == ["pitching a baseball", "swimming"]
    with pytest.raises(Exception, match="single label always gets 100%"):  # not a meaningless 100%
        _predict(client, real_clip, "custom (type below)", "pitching a baseball", 1)
    # Choosing "custom" before typing anything is no error: the graph view says what to do.
    assert client.predict("custom (type below)", "", "", api_name="/kg_search")["choices"] == []
    text, page, *_ = client.predict("custom (type below)", "", None, api_name="/kg_action")
    assert "Type your labels" in text and page == ""


# the checkpoint app (every head) ------------------------------------------------------------


def test_checkpoint_app_shows_regions_and_word_alignment(checkpoint_url, real_clip):
    client = _client(checkpoint_url)
    page = urllib.request.urlopen(checkpoint_url + "config", timeout=10).read().decode()
    assert "RANDOM weights" not in page and "fine-tuned KG-CLIP" in page
    (chart, kind, which, gallery, evidence, evidence_note, units, timeline, alignment, note, kg_html, *_, action,
     _, details) = _predict(client, real_clip, "the checkpoint's labels", top_k=5)
    assert details["label_set"] == "kinetics_tps24" and len(details["labels"]) == 5  # the checkpoint's classes
    assert [c[0] for c in kind["choices"]] == ["evidence", "regions", "units", "rival"]
    assert which["value"] in [c[0] for c in which["choices"]]
    assert alignment["type"] == "plotly" and note["value"] == ""
    assert details["edges"] and "kg " in kg_html
    which, _ = client.predict("regions", 0.5, api_name="/heatmap_kind")
    assert which["value"] == "all regions"
    region = client.predict("regions", "region 2", 0.5, api_name="/heatmaps")
    assert len(region) == 8
    # Why the top action and not any action the user picks; the rival's own concepts get maps too.
    other = next(label for label in details["labels"][1:] if label != details["contrast"]["rival"])
    note, table, _ = client.predict(other, 0.5, api_name="/contrast")
    assert f"and not {other}" in note and table["headers"][0] == "needed by"
    which, rival_maps = client.predict("rival", 0.5, api_name="/heatmap_kind")
    assert which["choices"] and len(rival_maps) == 8
    with pytest.raises(Exception, match="not in the list of choices"):  # Gradio checks the dropdown's choices
        client.predict("tennis serve", 0.5, api_name="/contrast")
    attribution, note = client.predict(4, 0.5, api_name="/deep_explanation")
    assert len(attribution) == 8 and details["labels"][0] in note


# the app offline, as it starts with no arguments --------------------------------------------

DEMO, FOUNDATION = "Demo model (fine-tuned KG-CLIP)", "Foundation (training-free)"


@pytest.fixture(scope="module")
def offline_url(tmp_path_factory):
    """``python app.py`` where no pretrained CLIP can be fetched (CI): the synthetic world's models."""
    proc, url = start_app(["--device", "cpu"], tmp_path_factory.mktemp("app") / "offline-app.log")
    yield url
    stop_app(proc)


def test_offline_app_offers_the_demo_model_and_the_foundation_with_plain_banners(offline_url):
    client = _client(offline_url)
    config = urllib.request.urlopen(offline_url + "config", timeout=10).read().decode()
    assert DEMO in config and FOUNDATION in config and "RANDOM weights" not in config
    banner, label_set = client.predict(FOUNDATION, api_name="/choose_model")
    assert "training-free" in banner and "Could not load pretrained weights" in banner and "synthetic_novel" in banner
    assert label_set["value"] == "the checkpoint's labels"  # the foundation's own label set: synthetic
    banner, _ = client.predict(DEMO, api_name="/choose_model")
    assert "fine-tuned" in banner and "24" in banner


def test_offline_app_predicts_with_the_chosen_model(offline_url):
    client = _client(offline_url)
    clip = REPO / "assets" / "examples" / "wave_right_hand.mp4"
    for title, model in ((FOUNDATION, "kgclip-synth (open_clip_model.safetensors, training-free)"),
                         (DEMO, "fine-tuned KG-CLIP")):
        details = client.predict(gradio_client.handle_file(str(clip)), "synthetic", "", 3, 0.5, title,
                                 api_name="/predict")[-1]
        assert model in details["model"] and details["label_set"] == "synthetic"
        if title == FOUNDATION:  # it names this example right, and its evidence is the waving hand
            assert details["labels"][0] == "wave right hand"
            shown = {e["text"] for e in details["evidence"] if e["present"]}
            assert "right hand wave" in shown
        assert details["random_weights"] is False and len(details["labels"]) == 3


# bad input ----------------------------------------------------------------------------------


def _write_video(path: Path, frames: int, size: tuple[int, int], fps: int) -> Path:
    """An H.264 file of ``frames`` frames of ``size`` (w, h), a moving gradient so it compresses well."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        ramp = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(ramp, i, axis=1), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _write_png(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(path)
    return path


def _write_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) / 5) * 3000).astype(np.int16).tobytes())
    return path


def test_image_and_audio_get_a_clear_message(app_url, tmp_path):
    client = _client(app_url)
    # The upload takes the video types only (GIF among them) and says which.
    for bad in (_write_png(tmp_path / "photo.png"), _write_wav(tmp_path / "sound.wav")):
        with pytest.raises(Exception, match=r"(?i)one of these formats.*\.mp4.*\.gif") as err:
            _predict(client, bad)
        assert "Traceback" not in str(err.value)
    # A picture or a sound under a video's name is read, and refused by what it holds.
    for bad, message in ((_write_png(tmp_path / "picture.png").rename(tmp_path / "photo.mp4"), "still image"),
                         (_write_wav(tmp_path / "sound.mp4"), "no video stream")):
        with pytest.raises(Exception, match=message) as err:
            _predict(client, bad)
        assert "Traceback" not in str(err.value)
    assert urllib.request.urlopen(app_url, timeout=10).status == 200


def test_hour_long_and_4k_videos_are_handled(app, tmp_path):
    proc, url = app
    client = _client(url)
    hour = _write_video(tmp_path / "hour.mp4", 3600, (64, 48), fps=1)
    *_, details = _predict(client, hour)
    assert details["video"]["duration"] == pytest.approx(3600, abs=2) and len(details["frame_indices"]) == 8
    uhd = _write_video(tmp_path / "uhd.mp4", 4, (3840, 2160), fps=25)
    *_, details = _predict(client, uhd)
    assert (details["video"]["width"], details["video"]["height"]) == (3840, 2160)
    assert psutil.Process(proc.pid).memory_info().rss < RSS_LIMIT


def test_bad_input_gets_a_message_and_the_server_stays_up(app_url, tmp_path):
    client = _client(app_url)
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    with pytest.raises(Exception, match="(?i)video") as err:
        _predict(client, bogus)
    assert "notes.mp4" in str(err.value) and str(tmp_path) not in str(err.value)  # no server folders
    with pytest.raises(Exception, match="(?i)duplicated"):
        _predict(client, bogus, "custom (type below)", "run, run")
    with pytest.raises(Exception, match="(?i)upload a video"):
        client.predict(None, "ucf101", "", 3, 0.5, api_name="/predict")
    assert urllib.request.urlopen(app_url, timeout=10).status == 200


def test_phone_and_elongated_videos_are_shown_upright_and_bounded(app_url, tmp_path):
    from PIL import Image

    client = _client(app_url)
    phone, _ = phone_video(tmp_path / "phone.mp4", 90, frames=8)
    outputs = _predict(client, phone)
    gallery, details = outputs[3], outputs[-1]
    assert (details["video"]["width"], details["video"]["height"], details["video"]["rotation"]) == (96, 160, 90)
    # Each picture starts with the frame itself (then its overlay): the picture's green grows
    # downwards along its left edge, so the frame stands upright, as the phone shows it.
    picture = np.asarray(Image.open(_image_files(gallery)[0]).convert("RGB")).astype(int)
    assert picture[-3, 2, 1] - picture[2, 2, 1] > 150 and abs(picture[-3, 2, 0] - picture[2, 2, 0]) < 40
    *_, details = _predict(client, ramp_video(tmp_path / "long.mp4", 8192, 16, frames=8))
    assert details["video"]["crop"] == [64, 16] and any("8192x16" in w for w in details["warnings"])


def test_still_pictures_and_empty_files_are_refused_before_the_labels_are_embedded(app_url, real_clip, tmp_path):
    client = _client(app_url)
    text_cache = Path(os.environ["KGCLIP_CACHE_DIR"]) / "text"  # the app's, inherited from conftest

    def cached() -> int:
        return len(list(text_cache.glob("*")))

    labels = "\n".join(f"refused action {i}" for i in range(30))
    before = cached()
    empty = tmp_path / "empty.mp4"
    empty.touch()
    song = cover_art_mp3(tmp_path / "song.mp3").rename(tmp_path / "song.mkv")  # a type the upload takes
    for bad, message in [(song, "still picture"),
                         (one_frame_gif(tmp_path / "still.gif"), "still picture"), (empty, "empty")]:
        with pytest.raises(Exception, match=message):
            _predict(client, bad, "custom (type below)", labels)
    assert cached() == before  # nothing was embedded for them
    _predict(client, real_clip, "custom (type below)", labels)
    assert cached() > before  # a readable clip does embed the labels


def test_twenty_concurrent_requests(app, real_clip):
    proc, url = app
    process = psutil.Process(proc.pid)
    results: list[object] = [None] * 20
    peak = [0]

    def call(i: int) -> None:
        try:
            results[i] = _predict(_client(url), real_clip, "kinetics_tps24", top_k=1)[-1]
        except Exception as err:  # a refusal must still be a message, checked below
            results[i] = err

    def watch(stop: threading.Event) -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.2)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    stop.set()
    watcher.join()
    answered = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(answered) + len(refused) == 20
    assert all(len(r["labels"]) == 1 for r in answered) and len(answered) >= 10
    assert all(str(e) for e in refused)
    assert proc.poll() is None and peak[0] < RSS_LIMIT
    assert urllib.request.urlopen(url, timeout=10).status == 200
