"""The app, started as a user starts it, called through gradio_client with a real clip."""

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO

gradio_client = pytest.importorskip("gradio_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    cmd = [sys.executable, "app.py", "--port", str(port), "--model", "kgclip-tiny", "--random-weights"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"app exited early:\n{log.read_text()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail(f"app did not start:\n{log.read_text()}")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_page_shows_random_weights_warning(app_url):
    page = urllib.request.urlopen(app_url + "config", timeout=10).read().decode()
    assert "RANDOM weights" in page


def test_predict_endpoint_on_real_clip(app_url, real_clip):
    client = gradio_client.Client(app_url, verbose=False)
    chart, gallery, details = client.predict(
        gradio_client.handle_file(str(real_clip)), "ucf101", "", 3, api_name="/predict")
    assert len(details["labels"]) == 3 and details["label_set"] == "ucf101"
    assert len(gallery) == 8 and chart is not None
    assert details["random_weights"] is True


def test_bad_input_gets_a_message_and_the_server_stays_up(app_url, tmp_path):
    client = gradio_client.Client(app_url, verbose=False)
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    with pytest.raises(Exception, match="(?i)video"):
        client.predict(gradio_client.handle_file(str(bogus)), "ucf101", "", 3, api_name="/predict")
    with pytest.raises(Exception, match="(?i)duplicated"):
        client.predict(gradio_client.handle_file(str(bogus)), "custom (type below)", "run, run", 3,
                       api_name="/predict")
    assert urllib.request.urlopen(app_url, timeout=10).status == 200
