"""Soak the running app: N clients x M mixed requests, then memory and disk before and after.

Starts ``python app.py`` on loopback (127.0.0.1 only) with its own upload folder
(``GRADIO_TEMP_DIR``) and text-embedding cache, both in a temporary folder, and sends every
client's requests in turn: a prediction on a built-in label set, a prediction on a new typed
label set (embedded and cached), a prediction on a freshly written upload, an upload that is
never predicted, and a knowledge-graph search of a typed set. Bounded in count (clients x
requests) and in time (``--max-seconds``: no new request after it). ``--cap-client`` adds
one client that sends a typed label set at the cost cap (docs/LIMITS.md) at the start, to
see it answered or refused within its budget while the others are served. Prints one table:
RSS of the app, the cache and upload folders before and after, requests, failures, p50/p95
latency.

``--long MINUTES`` soaks for that long instead, as browsers do over hours: each client opens a
new browser session (a new Gradio session) every ``--new-session-every`` requests and sends,
in turn, a prediction on a built-in set, one on a new typed set, one on a new upload, an upload
never predicted, a KG search and a report of its session's last prediction, pausing
``--pause`` seconds between requests (a person's pace; each client also stays under the app's
per-client upload limit, its own ``X-Forwarded-For`` naming it). The app's own RSS is sampled
every ``--sample-seconds``; it prints the RSS curve (one row a minute), the growth over the
second half (least squares, MB/min), the peak over the start, the decode processes' peak, and
the app's upload and report folders against their caps (counted every 2 s). ``--prefill``
starts with those folders filled with old files to what the app keeps after a prune (each cap
less its room), as after hours of use, so the caps are tested from the first minute.

    python benchmarks/bench_soak.py --clients 4 --requests 6 --max-seconds 240
    python benchmarks/bench_soak.py --clients 19 --requests 2 --cap-client \
        --app-args "--model ViT-B-32 --random-weights --labels ucf101"
    python benchmarks/bench_soak.py --long 30 --clients 3
    python benchmarks/bench_soak.py --long 10 --clients 3 --prefill
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import psutil
from gradio_client import Client, handle_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # kgclip_core, when run as a script from the repository
CLIP = REPO.parent / "shared" / "clips" / "c3d" / "v_BaseballPitch_g01_c01.avi"
KINDS = ("builtin", "typed", "upload", "upload_only", "kg_search")
LONG_KINDS = (*KINDS, "report")
FOLDER_EVERY_S = 2.0  # long mode: how often the upload and report folders are counted


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(app_args: list[str], env: dict[str, str], log, poll_s: float = 1.0,
              limit_s: float = 300) -> tuple[subprocess.Popen, str]:
    """``python app.py`` on a free loopback port, its output to ``log``; returns the process
    and its URL once the server answers (polled every ``poll_s``)."""
    port = _free_port()
    app = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), *app_args],
                           cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + limit_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return app, url
        except OSError:
            if app.poll() is not None or time.time() > deadline:
                app.kill()
                raise SystemExit(f"the app exited or did not answer; see {log.name}") from None
            time.sleep(poll_s)


def _folder_size(folder: Path) -> tuple[int, int]:
    """(files, bytes) under a folder. The app deletes files and folders while this counts (its
    caps' sweep, Gradio's clean-up): what vanishes meanwhile is not counted (os.walk skips a
    folder it can no longer list; a 30-minute soak's watcher died of rglob's error once)."""
    count = size = 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                size += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
            count += 1
    return count, size


def _rss(proc: psutil.Process) -> int:
    """Resident memory of the app and its child processes; a child that ends while this reads it
    is not counted (a 30-minute soak's watcher died of psutil's NoSuchProcess once)."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _prefill(folders: tuple[Path, Path]) -> None:
    """Fill the app's uploads and reports folders with small files of an hour ago to what the app
    keeps after a prune (each cap less its room, counting the files already there), as after
    hours of use, so the caps are tested from the soak's first minute."""
    from kgclip_ui.storage import REPORTS_MAX_FILES, REPORTS_ROOM, UPLOADS_MAX_FILES, UPLOADS_ROOM

    old = time.time() - 3000  # younger than Gradio's one-hour clean-up, older than every new file
    kept = (UPLOADS_MAX_FILES - UPLOADS_ROOM, REPORTS_MAX_FILES - REPORTS_ROOM)
    for folder, count in zip(folders, kept):
        (folder / "prefill").mkdir()
        for i in range(count - _folder_size(folder)[0]):
            path = folder / "prefill" / f"old{i:05d}.bin"
            path.write_bytes(b"x" * 1024)
            os.utime(path, (old + i, old + i))


def _write_clip(path: Path, seed: int) -> Path:
    """A small new H.264 clip (different bytes every time, so every upload is a new file)."""
    import av

    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for _ in range(16):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 96, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _request(client: Client, url: str, kind: str, tag: str, scratch: Path, headers: dict[str, str] | None = None):
    """One request of the given kind; raises on failure."""
    if kind == "report":  # of the session's last prediction
        return client.predict("evidence", "all concepts", 0.5, api_name="/report")
    if kind == "builtin":
        return client.predict(handle_file(str(CLIP)), "ucf101", "", 3, 0.5, api_name="/predict")
    if kind == "typed":
        labels = "\n".join(f"soak action {tag} {i}" for i in range(6))
        return client.predict(handle_file(str(CLIP)), "custom (type below)", labels, 3, 0.5, api_name="/predict")
    if kind == "upload":
        clip = _write_clip(scratch / f"{tag}.mp4", zlib.crc32(tag.encode()))
        try:
            return client.predict(handle_file(str(clip)), "ucf101", "", 3, 0.5, api_name="/predict")
        finally:
            clip.unlink()
    if kind == "upload_only":  # an upload nobody predicts: it must not stay forever
        clip = _write_clip(scratch / f"{tag}-only.mp4", zlib.crc32(tag.encode()) + 1)
        status = _raw_upload(url, clip, headers)
        clip.unlink()
        return status
    return client.predict("custom (type below)", f"soak kg {tag} a, soak kg {tag} b", "", api_name="/kg_search")


def _raw_upload(url: str, clip: Path, headers: dict[str, str] | None = None) -> int:
    """POST a file to the app's upload endpoint, as a browser does when a clip is dropped."""
    boundary = "soakboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{clip.name}\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode() + clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "gradio_api/upload", body,
                                     {"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})})
    return urllib.request.urlopen(request, timeout=60).status


def _at_cap_labels() -> list[str]:
    """Three-word labels, as many as fit under the app's cost cap of a typed label set."""
    from kgclip_core.budget import MAX_CUSTOM_PROMPT_TOKENS, prompt_tokens

    rng = np.random.default_rng(0)
    words = "playing guitar riding horse brushing teeth jumping running swimming throwing ball kicking".split()
    labels = [f"{' '.join(rng.choice(words, 3))} {i}" for i in range(2000)]
    fit, over = 0, len(labels)  # the cost grows with the count: bisect for the most that fit
    while over - fit > 1:
        mid = (fit + over) // 2
        fit, over = (mid, over) if prompt_tokens(labels[:mid]) <= MAX_CUSTOM_PROMPT_TOKENS else (fit, mid)
    return labels[:fit]


def _cap_request(url: str, outcome: list[str]) -> None:
    """Send a typed label set at the cost cap; note how it ended and when."""
    labels = _at_cap_labels()
    start = time.perf_counter()
    try:
        Client(url, verbose=False).predict(handle_file(str(CLIP)), "custom (type below)", "\n".join(labels), 3, 0.5,
                                           api_name="/predict")
        outcome.append(f"{len(labels)} labels at the cap: answered in {time.perf_counter() - start:.0f} s")
    except Exception as err:  # a refusal is an outcome here, reported with its message
        outcome.append(f"{len(labels)} labels at the cap: refused after {time.perf_counter() - start:.0f} s "
                       f"({str(err).splitlines()[0][:100]})")


def soak(url: str, clients: int, requests: int, deadline: float, scratch: Path) -> tuple[list[float], list[str]]:
    """Run the clients; latencies of the answered requests and the failures' messages."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client_loop(c: int) -> None:
        client = Client(url, verbose=False)
        for i in range(requests):
            if time.time() > deadline:
                return
            kind = KINDS[(c + i) % len(KINDS)]
            start = time.perf_counter()
            try:
                _request(client, url, kind, f"c{c}r{i}", scratch)
            except Exception as err:  # counted, and the soak goes on
                with lock:
                    failures.append(f"{kind}: {str(err).splitlines()[0][:120]}")
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client_loop, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures


def long_soak(url: str, clients: int, deadline: float, scratch: Path, new_session_every: int,
              pause: float) -> tuple[list[float], list[str], int]:
    """The long mode's clients, until ``deadline``: latencies, failures' messages, sessions opened."""
    latencies: list[float] = []
    failures: list[str] = []
    sessions = [0]
    lock = threading.Lock()

    def client_loop(c: int) -> None:
        headers = {"X-Forwarded-For": f"soak-client-{c}"}  # the app's per-client upload limit, per client
        client, predicted, i = None, False, 0
        while time.time() < deadline:
            if i % new_session_every == 0:  # a new browser session: nothing of the last one is reused
                client, predicted = Client(url, verbose=False, headers=headers), False
                with lock:
                    sessions[0] += 1
            kind = LONG_KINDS[(c + i) % len(LONG_KINDS)]
            if kind == "report" and not predicted:
                kind = "builtin"  # a report needs its session's prediction first
            start = time.perf_counter()
            try:
                _request(client, url, kind, f"c{c}r{i}", scratch, headers)
                predicted = predicted or kind in ("builtin", "typed", "upload")
                with lock:
                    latencies.append(time.perf_counter() - start)
            except Exception as err:  # counted, and the soak goes on
                with lock:
                    failures.append(f"{kind}: {str(err).splitlines()[0][:120]}")
            i += 1
            time.sleep(pause)

    threads = [threading.Thread(target=client_loop, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures, sessions[0]


def _slope_mb_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares growth of RSS (MB per minute) over ``samples`` of (seconds, bytes)."""
    t = np.array([s for s, _ in samples]) / 60
    mb = np.array([r for _, r in samples]) / 2**20
    return float(np.polyfit(t, mb, 1)[0]) if len(samples) > 1 else float("nan")


def _app_folders(base: Path) -> tuple[Path, Path]:
    """The app's uploads and reports folders (kgclip_ui.storage) under ``base``."""
    root = next(base.glob("kgclip-app-*"), base / "kgclip-app-missing")
    return root / "uploads", root / "reports"


def run_long(args: argparse.Namespace, app: subprocess.Popen, url: str, work: Path) -> None:
    """The long mode: soak for ``args.long`` minutes; print the RSS curve and the folders against their caps."""
    from kgclip_ui.storage import REPORTS_MAX_FILES, REPORTS_MAX_MB, UPLOADS_MAX_FILES, UPLOADS_MAX_MB

    mb = 2**20
    proc = psutil.Process(app.pid)
    uploads, reports = _app_folders(work / "gradio")
    samples: list[tuple[float, int]] = []
    folders_max = [(0, 0), (0, 0)]
    children_peak = [0]
    watch_errors: list[str] = []
    stop = threading.Event()
    if args.prefill:
        _prefill((uploads, reports))
    started = time.time()

    def watch() -> None:
        last = last_count = -args.sample_seconds
        while not stop.is_set():
            now = time.time() - started
            try:
                rss = proc.memory_info().rss
                children_peak[0] = max(children_peak[0], _rss(proc) - rss)
                if now - last >= args.sample_seconds:
                    samples.append((now, rss))
                    last = now
                if now - last_count >= FOLDER_EVERY_S:  # often: the caps must hold between the app's sweeps
                    folders_max[:] = [max(m, _folder_size(f)) for m, f in zip(folders_max, (uploads, reports))]
                    last_count = now
            except Exception as err:  # noqa: BLE001 - counted and printed: a dead watcher made a flat curve once
                watch_errors.append(f"{now:.0f} s: {err!r}")
            time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    latencies, failures, sessions = long_soak(url, args.clients, started + args.long * 60, work / "scratch",
                                              args.new_session_every, args.pause)
    elapsed = time.time() - started
    stop.set()
    watcher.join()
    alive = app.poll() is None and urllib.request.urlopen(url, timeout=10).status == 200
    after = (_folder_size(uploads), _folder_size(reports))

    print(f"long soak: {args.clients} clients, {elapsed / 60:.1f} min, a new session every {args.new_session_every} "
          f"requests ({', '.join(LONG_KINDS)} in turn, {args.pause} s pause), app {args.app_args!r}, "
          f"{'folders prefilled to their caps, ' if args.prefill else ''}load {os.getloadavg()[0]:.1f}")
    print("| minute | app RSS (MB) |")
    print("| ---: | ---: |")
    for minute in range(int(elapsed // 60) + 1):
        near = min(samples, key=lambda s: abs(s[0] - 60 * minute))
        print(f"| {minute} | {near[1] / mb:.0f} |")
    start_rss, peak = samples[0][1], max(r for _, r in samples)
    half = [s for s in samples if s[0] >= elapsed / 2]
    print()
    print("| measure | value |")
    print("| --- | ---: |")
    print(f"| app RSS start / end / peak (MB) | {start_rss / mb:.0f} / {samples[-1][1] / mb:.0f} / {peak / mb:.0f} |")
    print(f"| peak over start (MB) | {(peak - start_rss) / mb:.0f} |")
    print(f"| RSS growth, second half (MB/min) | {_slope_mb_per_min(half):.1f} |")
    print(f"| decode processes' RSS, peak (MB) | {children_peak[0] / mb:.0f} |")
    for name, (files, size), (max_files, max_size), (cap_files, cap_mb) in zip(
            ("uploads", "reports"), after, folders_max,
            ((UPLOADS_MAX_FILES, UPLOADS_MAX_MB), (REPORTS_MAX_FILES, REPORTS_MAX_MB))):
        print(f"| {name} folder at the end / most seen (files, MB); cap | {files}, {size / mb:.1f} / {max_files}, "
              f"{max_size / mb:.1f}; {cap_files}, {cap_mb} |")
    p50, p95 = (np.percentile(latencies, [50, 95]) if latencies else (float("nan"),) * 2)
    print(f"| requests answered / failed | {len(latencies)} / {len(failures)} |")
    print(f"| latency p50 / p95 (s) | {p50:.2f} / {p95:.2f} |")
    print(f"| browser sessions opened | {sessions} |")
    print(f"| server alive and answering afterwards | {'yes' if alive else 'NO'} |")
    print(f"| watcher's failed readings | {len(watch_errors)} |")
    for failure in failures[:10]:
        print(f"failure: {failure}")
    for error in watch_errors[:5]:
        print(f"watcher: {error}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--requests", type=int, default=6, help="requests per client")
    p.add_argument("--max-seconds", type=float, default=240, help="no new request after this")
    p.add_argument("--cap-client", action="store_true", help="one more client sends a typed set at the cost cap")
    p.add_argument("--cache-max-mb", type=float, default=1.0, help="the app's text-cache cap (small: eviction shows)")
    p.add_argument("--app-args", default="--model kgclip-tiny --random-weights",
                   help="options for app.py (default: the tiny model, so the soak measures the server, not the model)")
    p.add_argument("--long", type=float, default=None, metavar="MINUTES",
                   help="soak this many minutes instead, as browsers do: new sessions, typed sets, uploads, reports")
    p.add_argument("--new-session-every", type=int, default=10, help="long mode: requests per browser session")
    p.add_argument("--pause", type=float, default=0.5, help="long mode: seconds between a client's requests")
    p.add_argument("--sample-seconds", type=float, default=10.0, help="long mode: how often RSS is sampled")
    p.add_argument("--prefill", action="store_true",
                   help="long mode: start with the app's upload and report folders filled with old files to what "
                        "it keeps after a prune (each cap less its room)")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="kgclip-soak-"))
    uploads, cache, scratch = work / "gradio", work / "cache", work / "scratch"
    scratch.mkdir()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(uploads), "KGCLIP_CACHE_DIR": str(cache)}
    log = open(work / "app.log", "w")
    app, url = start_app(["--cache-max-mb", str(args.cache_max_mb), *args.app_args.split()], env, log)
    if args.long is not None:
        try:
            time.sleep(5)  # let the start-up warm-up settle before the first reading
            run_long(args, app, url, work)
        finally:
            app.terminate()
            app.wait(timeout=60)
            log.close()
        return
    try:
        time.sleep(5)  # let the start-up warm-up settle before the first reading
        proc = psutil.Process(app.pid)
        before = (_rss(proc), _folder_size(cache), _folder_size(uploads))
        peak = [before[0]]
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _rss(proc))
                time.sleep(0.5)

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.time()
        outcome: list[str] = []
        cap = threading.Thread(target=_cap_request, args=(url, outcome))
        if args.cap_client:
            cap.start()
        latencies, failures = soak(url, args.clients, args.requests, started + args.max_seconds, scratch)
        if args.cap_client:
            cap.join()
        elapsed = time.time() - started
        stop.set()
        watcher.join()
        after = (_rss(proc), _folder_size(cache), _folder_size(uploads))
        alive = app.poll() is None and urllib.request.urlopen(url, timeout=10).status == 200
    finally:
        app.terminate()
        app.wait(timeout=60)
        log.close()

    mb = 2**20
    print(f"soak: {args.clients} clients x {args.requests} requests ({', '.join(KINDS)} in turn), "
          f"{elapsed:.0f} s, app {args.app_args!r}, cache cap {args.cache_max_mb} MB, load {os.getloadavg()[0]:.1f}")
    print("| measure | before | after |")
    print("| --- | ---: | ---: |")
    print(f"| app RSS (MB) | {before[0] / mb:.0f} | {after[0] / mb:.0f} (peak {peak[0] / mb:.0f}) |")
    print(f"| text cache (files, MB) | {before[1][0]}, {before[1][1] / mb:.2f} | {after[1][0]}, {after[1][1] / mb:.2f} |")
    print(f"| Gradio upload/cache folder (files, MB) | {before[2][0]}, {before[2][1] / mb:.2f} | "
          f"{after[2][0]}, {after[2][1] / mb:.2f} |")
    answered = len(latencies)
    p50, p95 = (np.percentile(latencies, [50, 95]) if latencies else (float("nan"),) * 2)
    print(f"| requests answered / failed | {answered} / {len(failures)} | p50 {p50:.2f} s, p95 {p95:.2f} s |")
    for line in outcome:
        print(f"| typed set at the cost cap | | {line} |")
    print(f"| server alive and answering afterwards | | {'yes' if alive else 'NO'} |")
    for failure in failures[:10]:
        print(f"failure: {failure}")


if __name__ == "__main__":
    main()
