"""Issue 31, items 1-4 in the running app: a cancel stops the decode before the worker is free,
the GIF bomb is refused without cost, sessions past the cap drop the oldest, the upload and
report folders are the app's own, capped, and removed when it stops (SIGTERM and Ctrl-C).

One app on the tiny model serves the tests that share it, with ``--max-sessions 2`` and its
temporary folder (``TMPDIR``) in the test's, so its files can be seen; the long soak is a
benchmark (``benchmarks/bench_soak.py --long``), not a test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from _videos import gif_bomb
from conftest import REPO
from test_app import TINY_APP, _client, _predict, start_app

gradio_client = pytest.importorskip("gradio_client")
psutil = pytest.importorskip("psutil")

EXAMPLE = REPO / "assets" / "examples" / "punch_with_right_arm.mp4"


def _start(tmp: Path, *extra: str) -> tuple[subprocess.Popen, str, Path]:
    """The tiny app with its temporary folder under ``tmp``; (process, URL, that folder)."""
    temp = tmp / "tmp"
    temp.mkdir()
    os.environ["TMPDIR"], old = str(temp), os.environ.get("TMPDIR")
    try:
        proc, url = start_app([*TINY_APP, *extra], tmp / "app.log")
    finally:
        os.environ.pop("TMPDIR") if old is None else os.environ.__setitem__("TMPDIR", old)
    return proc, url, temp


def _app_folder(temp: Path) -> Path:
    (folder,) = temp.glob("kgclip-app-*")
    return folder


def _decoding_children(proc: subprocess.Popen) -> list[psutil.Process]:
    return [p for p in psutil.Process(proc.pid).children(recursive=True)
            if "kgclip_core.isolated" in " ".join(p.cmdline())]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    proc, url, temp = _start(tmp_path_factory.mktemp("limits"), "--max-sessions", "2")
    yield proc, url, temp
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_cancelled_prediction_has_stopped_its_decode_when_the_cancel_returns(app, tmp_path):
    proc, url, _ = app
    slow = gif_bomb(tmp_path / "slow.gif", frames=1100, side=4096)  # under the cap, seconds to decode
    client = _client(url)
    job = client.submit(gradio_client.handle_file(str(slow)), "ucf101", "", 3, 0.5, api_name="/predict")
    started = time.monotonic()
    while not _decoding_children(proc):
        assert time.monotonic() - started < 60 and not job.done(), "the decode never started"
        time.sleep(0.02)
    job.cancel()  # Gradio's /cancel returns once the cancelled handler has returned
    assert _decoding_children(proc) == []
    assert _predict(client, EXAMPLE)[0] is not None  # the worker serves the next request


def test_send_and_cancel_of_the_gif_bomb_leaves_memory_and_no_process(app, tmp_path):
    proc, url, _ = app
    bomb = gif_bomb(tmp_path / "bomb.gif")
    client = _client(url)
    before = psutil.Process(proc.pid).memory_info().rss
    for _ in range(4):
        job = client.submit(gradio_client.handle_file(str(bomb)), "ucf101", "", 3, 0.5, api_name="/predict")
        time.sleep(1)
        job.cancel()
    assert psutil.Process(proc.pid).memory_info().rss - before < 300 * 2**20
    assert _decoding_children(proc) == []
    with pytest.raises(Exception, match=r"bomb\.gif would need .* G pixels.*at most 20 G") as refused:
        _predict(client, bomb)
    assert str(tmp_path) not in str(refused.value)  # the file by its name, not the server's folders


def test_sessions_past_the_cap_drop_the_least_recently_used(app):
    _, url, _ = app
    first, second, third = (_client(url) for _ in range(3))
    for client in (first, second, third):
        _predict(client, EXAMPLE)
    # The first session's state is gone, the menus' choices it was given with it.
    with pytest.raises(Exception, match="(?i)recognise a clip first"):
        first.predict(None, None, 0.5, api_name="/report")
    assert len(third.predict("evidence", "all concepts", 0.5, api_name="/report")) == 2


def test_uploads_and_reports_live_in_the_apps_own_folder(app):
    _, url, temp = app
    client = _client(url)
    _predict(client, EXAMPLE)
    html, _ = client.predict("evidence", "all concepts", 0.5, api_name="/report")
    folder = _app_folder(temp)
    assert any((folder / "uploads").rglob(EXAMPLE.name))
    assert [p.name for p in (folder / "reports").rglob("*.html")].count(Path(html).name) >= 1


def _stop_removes_the_folder(proc: subprocess.Popen, url: str, temp: Path, stop: signal.Signals) -> None:
    client = _client(url)
    _predict(client, EXAMPLE)
    client.predict("evidence", "all concepts", 0.5, api_name="/report")
    folder = _app_folder(temp)
    assert any(p.is_file() for p in (folder / "uploads").rglob("*"))
    assert any(p.is_file() for p in (folder / "reports").rglob("*"))
    proc.send_signal(stop)
    assert proc.wait(timeout=60) == 0
    assert not folder.exists()


def test_ctrl_c_removes_the_apps_folder(tmp_path):
    proc, url, temp = _start(tmp_path)
    try:
        _stop_removes_the_folder(proc, url, temp, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_removes_the_apps_folder(app):
    """Last of the shared app's tests: it stops that app."""
    _stop_removes_the_folder(*app, signal.SIGTERM)


# The parts, without a server ------------------------------------------------------------------


def test_a_folder_cap_deletes_the_oldest_files_first(tmp_path):
    from kgclip_ui.storage import FolderCap

    for i in range(6):
        (tmp_path / f"sub{i}").mkdir()
        path = tmp_path / f"sub{i}" / f"f{i}"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
    assert FolderCap(tmp_path, max_files=4, max_bytes=10_000).prune() == 2
    assert sorted(p.name for p in tmp_path.rglob("f*")) == ["f2", "f3", "f4", "f5"]
    assert not (tmp_path / "sub0").exists()  # emptied folders go too
    FolderCap(tmp_path, max_files=100, max_bytes=250).prune()
    assert sorted(p.name for p in tmp_path.rglob("f*")) == ["f4", "f5"]
    FolderCap(tmp_path, max_files=2, max_bytes=10_000, room=1).prune()  # room for one more file
    assert sorted(p.name for p in tmp_path.rglob("f*")) == ["f5"]


def test_reports_never_pass_their_file_cap_while_written(tmp_path):
    """A report prunes before it writes, leaving room for its own files (the MP4's partial file
    included); the report events run one at a time, so the folder is at most at its cap."""
    from kgclip_core.prediction import Timeline, TimelineWindow
    from kgclip_core.timeline import segments_of
    from kgclip_core.video import VideoInfo
    from kgclip_ui.handlers.report import Reports
    from kgclip_ui.handlers.timeline import TimelineSession
    from kgclip_ui.storage import REPORTS_ROOM, FolderCap
    from kgclip_ui.wiring import ONE_REPORT_AT_A_TIME

    cap = FolderCap(tmp_path, max_files=6, max_bytes=10**9, room=REPORTS_ROOM)
    for i in range(6):
        (tmp_path / f"old{i}.html").write_text("x")
        os.utime(tmp_path / f"old{i}.html", (1000 + i, 1000 + i))
    windows = [TimelineWindow(0, 2, ["punch"], ["punch"], [0.9], [0, 10, 20], None, False)]
    line = Timeline(windows, segments_of(windows, 2.0), 2.0, 0.5, 8, 8, "custom",
                    VideoInfo(str(EXAMPLE), 40, 16.0, 2.5, 112, 112, "pyav"), "model", False)
    written = Reports(cap).make_timeline_report(TimelineSession(line, str(EXAMPLE), None, "model", 1))
    assert Path(written).exists() and cap.usage()[0] == 6 - REPORTS_ROOM + 1  # room made first, then one file
    assert ONE_REPORT_AT_A_TIME == {"concurrency_limit": 1, "concurrency_id": "reports"}


def test_the_upload_limit_counts_per_client_and_per_minute():
    from kgclip_ui.upload_limit import UploadLimit

    limit = UploadLimit(app=None, per_minute=3, mb_per_minute=1)
    assert [limit.refusal("a", 10, now=100.0 + i) for i in range(3)] == [None] * 3
    assert "Too many uploads" in limit.refusal("a", 10, now=103.0)
    assert limit.refusal("b", 10, now=103.0) is None  # another client is not held back
    assert limit.refusal("a", 10, now=161.0) is None  # a minute later the first has left the window
    assert "Too many uploads" in limit.refusal("c", 2 * 2**20, now=200.0)  # bytes count too


def test_a_client_is_the_peer_unless_a_local_proxy_names_it():
    from kgclip_ui.upload_limit import client_of

    forwarded = [(b"x-forwarded-for", b"1.2.3.4, 10.0.0.1")]
    assert client_of({"client": ("10.0.0.2", 1), "headers": forwarded}) == "1.2.3.4"
    assert client_of({"client": ("8.8.8.8", 1), "headers": forwarded}) == "8.8.8.8"  # a public peer is no proxy


def test_the_upload_route_prunes_after_each_accepted_upload_only():
    """The uploads folder's caps hold between sweeps: the middleware prunes once an accepted upload
    has been answered, never for a refused one or another route."""
    import asyncio

    from kgclip_ui.upload_limit import UploadLimit

    events: list[str] = []

    async def app(scope, receive, send) -> None:
        events.append(f"served {scope['path']}")

    limit = UploadLimit(app, per_minute=1, after_upload=lambda: events.append("pruned"))

    def call(path: str) -> None:
        scope = {"type": "http", "method": "POST", "path": path, "client": ("8.8.8.8", 1), "headers": []}

        async def send(message) -> None:
            if message["type"] == "http.response.start":
                events.append(f"answered {message['status']}")

        asyncio.run(limit(scope, None, send))

    call("/gradio_api/upload")
    call("/gradio_api/upload")  # the second in a minute: refused (per_minute=1)
    call("/gradio_api/queue/join")
    assert events == ["served /gradio_api/upload", "pruned", "answered 429", "served /gradio_api/queue/join"]


def test_freed_memory_goes_back_to_the_system():
    """A heap pinned by its last block keeps every freed page below it until the trim
    (the long soak's creep, kgclip_ui.memory)."""
    from kgclip_ui.memory import _glibc, release_freed_memory

    if _glibc() is None:
        pytest.skip("not glibc: nothing to trim")
    me = psutil.Process()
    blocks = [bytearray(100_000) for _ in range(3000)]  # under the mmap threshold: from the heap
    pinned = blocks[-1]
    del blocks
    before = me.memory_info().rss
    assert release_freed_memory()
    assert before - me.memory_info().rss > 200 * 2**20  # most of the 300 MB freed comes back
    assert len(pinned) == 100_000
