"""Issue 31, items 1 and 2 in the library: decoding cost is bounded before any frame is decoded,
and a decode that is cancelled or over its budget is stopped (its child process killed and
reaped), never left running.

The costly clips are made here: the GIF bomb of the issue (3,000 one-pixel frames on an
8192x8192 canvas, 69 kB) and a slow GIF under the cap (1,100 frames on 4096x4096, about 10 s
of one core to decode), whose decode is stopped long before it would end.
"""

from __future__ import annotations

import os
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import psutil
import pytest

from _videos import gif_bomb
from kgclip_core import isolated, video, video_out
from kgclip_core.budget import CancelToken, Deadline, RequestLimits
from kgclip_core.errors import BudgetError, Cancelled, VideoError
from kgclip_core.video import MAX_DECODE_PIXELS, frames_to_decode, probe_video, read_clip


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return gif_bomb(tmp_path_factory.mktemp("bomb") / "bomb.gif")


@pytest.fixture(scope="module")
def slow_gif(tmp_path_factory) -> Path:
    """Under the cost cap (1,100 x 4096 x 4096 = 18.5 G pixels) but seconds to decode."""
    path = gif_bomb(tmp_path_factory.mktemp("slow") / "slow.gif", frames=1100, side=4096)
    assert 1100 * 4096 * 4096 <= MAX_DECODE_PIXELS
    return path


def _decoding_children() -> list[psutil.Process]:
    """This process's children running an isolated call."""
    return [p for p in psutil.Process().children(recursive=True)
            if "kgclip_core.isolated" in " ".join(p.cmdline())]


def _stop_on_call(n: int, error: Exception, seen: list[psutil.Process]):
    """A ``check`` that raises ``error`` on its ``n``-th call, noting the children alive then."""
    calls = [0]

    def check() -> None:
        calls[0] += 1
        if calls[0] >= n:
            seen.extend(_decoding_children())
            raise error

    return check


def test_the_gif_bomb_is_refused_before_any_frame_is_decoded(bomb, monkeypatch):
    assert bomb.stat().st_size < 70_000
    monkeypatch.setattr(video._PyAVReader, "read", lambda *a: pytest.fail("frames were decoded"))
    with pytest.raises(VideoError, match=r"8192x8192 pixels decoded \(a GIF paints every frame on its full canvas\)"):
        read_clip(bomb)


def test_the_refusal_names_the_cost_and_the_cap(bomb):
    with pytest.raises(VideoError) as refused:
        read_clip(bomb)
    message = str(refused.value)
    assert "189 G pixels" in message and "at most 20 G" in message and "\n" not in message


def test_frames_to_decode_counts_from_the_key_frame_before_each_sample():
    keys = np.array([0, 10, 25])
    # 5: frames 0-5; 7: on from 5 (no key frame between): 6-7; 30: from key frame 25: 25-30.
    assert frames_to_decode(np.array([5, 7, 30]), keys) == 6 + 2 + 6
    assert frames_to_decode(np.array([5, 30]), np.array([], np.int64)) == 31  # no index: all from the start
    assert frames_to_decode(np.array([0, 10]), keys) == 1 + 1


def test_a_clip_under_the_cap_is_read(slow_gif):
    info = probe_video(slow_gif)
    assert (info.width, info.height, info.num_frames) == (4096, 4096, 1100)


def test_the_playable_copy_decodes_at_most_its_pixel_budget(tmp_path, monkeypatch):
    gif = gif_bomb(tmp_path / "wide.gif", frames=300, side=2048)
    monkeypatch.setattr(video_out, "PREVIEW_MAX_PIXELS", 10 * 2048 * 2048)  # ten frames' worth
    shown = video_out.playable_copy(gif)
    copy = probe_video(shown.path)
    assert copy.num_frames <= 10 and max(copy.width, copy.height) <= video_out.PREVIEW_MAX_SIDE
    assert "The copy shows the first" in shown.note


def test_an_isolated_call_answers_or_raises_as_in_process(tmp_path):
    assert isolated.run_isolated(divmod, 7, 2) == (3, 1)
    with pytest.raises(VideoError, match="Video not found"):
        isolated.run_isolated(read_clip, tmp_path / "missing.mp4")
    assert _decoding_children() == []


def test_a_cancel_kills_and_reaps_the_decoding_child(slow_gif):
    seen: list[psutil.Process] = []
    with pytest.raises(Cancelled):
        # The 10th check, half a second in: the decode has seconds to go.
        isolated.run_isolated(read_clip, slow_gif, check=_stop_on_call(10, Cancelled("cancelled"), seen))
    assert len(seen) == 1
    assert not seen[0].is_running()  # killed and reaped (not a zombie) before the error came
    assert _decoding_children() == []


def test_a_decode_over_its_budget_is_killed(slow_gif):
    seen: list[psutil.Process] = []
    check = partial(Deadline.after(0.5).check, "decoding the clip")

    def watched() -> None:
        seen.extend(child for child in _decoding_children() if child not in seen)
        check()

    with pytest.raises(BudgetError, match="budget while decoding the clip"):
        isolated.run_isolated(read_clip, slow_gif, check=watched)
    assert seen and not any(p.is_running() for p in seen)


def test_a_child_that_dies_is_a_video_error_not_a_hang():
    with pytest.raises(VideoError, match="stopped without an answer"):
        isolated.run_isolated(os._exit, 3)


def test_a_predictor_with_limits_stops_its_decode_when_cancelled(make_full_predictor, slow_gif):
    predictor = make_full_predictor()
    predictor.limits = RequestLimits(budget_s=None)
    token = CancelToken()
    started = time.monotonic()

    def cancel_once_decoding() -> None:
        while not _decoding_children() and time.monotonic() - started < 60:
            time.sleep(0.02)
        token.cancel()

    canceller = threading.Thread(target=cancel_once_decoding)
    canceller.start()
    with pytest.raises(Cancelled, match="decoding the clip"):
        predictor.predict(slow_gif, labels=["jump", "wave"], cancel=token)
    canceller.join()
    assert _decoding_children() == []


def test_a_cancel_token_crosses_into_another_process_unset():
    import pickle

    token = CancelToken()
    token.cancel()
    deadline = Deadline.after(10, token)
    copy = pickle.loads(pickle.dumps(deadline))
    assert not copy.cancel.cancelled and copy.at == deadline.at
