"""The app's own folder on disk: uploads and playable copies (Gradio's upload folder), and reports.

Everything the app writes goes under one new folder of its own (``kgclip-app-XXXX`` in
``$GRADIO_TEMP_DIR`` when the operator set it, else in the system's temporary folder), never a
folder shared with other apps: ``uploads/`` is Gradio's
upload and cache folder (``GRADIO_TEMP_DIR``, so an upload's playable copy, written beside it,
lands there too) and ``reports/`` holds the reports. Each is capped in files and in size
(:class:`FolderCap`): a sweep every ``SWEEP_S`` seconds, one after each upload (``app.py``,
through ``upload_limit.UploadLimit``) and one after each report delete the oldest files past
either cap, on top of Gradio's own removal of files older than an hour. The
whole folder is removed when the app stops (``app.py``: Ctrl-C and SIGTERM both end in
:meth:`AppFolder.remove`). docs/LIMITS.md lists the caps.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("kgclip.app")

# Uploads are up to 500 MB each (app.py MAX_UPLOAD): the size cap holds several at once; the file
# cap bounds the many small ones (a prediction's frames sent back, a report's copy).
UPLOADS_MAX_FILES, UPLOADS_MAX_MB = 2000, 4096
# Each prune of the uploads leaves room for this many files: what the requests in flight send back
# before the next prune (a prediction's eight frames, a playable copy; the 30-minute soak of 3
# clients went 11 files over the cap between sweeps without it).
UPLOADS_ROOM = 100
# A report is an HTML page and an MP4 of the clip with its heatmap, about 0.6 MB together.
REPORTS_MAX_FILES, REPORTS_MAX_MB = 200, 256
# The files one report has at most while it is written (its HTML, its MP4 and the MP4's partial
# file); one report is written at a time (kgclip_ui.wiring), so pruning to this room first keeps the cap.
REPORTS_ROOM = 3
# Between sweeps only the files a request sends back arrive (uploads and reports prune as they
# land); listing a capped folder takes milliseconds.
SWEEP_S = 10.0


@dataclass(frozen=True)
class FolderCap:
    """A folder kept to at most ``max_files`` files and ``max_bytes`` bytes, the oldest files
    (by modification time) deleted first; a prune leaves room for ``room`` more files, those
    that arrive before the next one."""

    path: Path
    max_files: int
    max_bytes: int
    room: int = 0

    def usage(self) -> tuple[int, int]:
        """(files, bytes) under the folder now."""
        files = self._files()
        return len(files), sum(size for _, size, _ in files)

    def prune(self) -> int:
        """Delete the oldest files until ``room`` more fit under the file cap and the size is
        under its cap, then the folders those deletions left empty (never another: a request may
        have just made one to write into); returns how many files were deleted. Files that
        vanish meanwhile (Gradio's own clean-up) are skipped."""
        files = sorted(self._files())
        count, size = len(files), sum(s for _, s, _ in files)
        emptied = set()
        for _, file_size, path in files:
            if count + self.room <= self.max_files and size <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            count, size = count - 1, size - file_size
            emptied.add(path.parent)
        for folder in sorted(emptied - {self.path}, key=lambda p: -len(p.parts)):
            try:
                folder.rmdir()  # only an empty one goes
            except OSError:
                pass
        return len(files) - count

    def _files(self) -> list[tuple[float, int, Path]]:
        found = []
        for path in self.path.rglob("*"):
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if not path.is_dir():
                found.append((st.st_mtime, st.st_size, path))
        return found


class AppFolder:
    """The app's folder: ``uploads`` (Gradio's) and ``reports``, capped, swept, removed at the end."""

    def __init__(self, base: str | Path | None = None) -> None:
        """A new folder in ``base`` (default: ``$GRADIO_TEMP_DIR`` if set, else the system's temporary folder)."""
        base = base or os.environ.get("GRADIO_TEMP_DIR") or None
        if base is not None:
            Path(base).mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="kgclip-app-", dir=base))
        self.uploads = FolderCap(self.root / "uploads", UPLOADS_MAX_FILES, UPLOADS_MAX_MB * 2**20, UPLOADS_ROOM)
        self.reports = FolderCap(self.root / "reports", REPORTS_MAX_FILES, REPORTS_MAX_MB * 2**20, REPORTS_ROOM)
        for cap in (self.uploads, self.reports):
            cap.path.mkdir()
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def use_for_uploads(self) -> None:
        """Point Gradio's upload and cache folder here (read when the Blocks and the server are made)."""
        os.environ["GRADIO_TEMP_DIR"] = str(self.uploads.path)

    def sweep(self) -> None:
        """Bring both folders under their caps."""
        for cap in (self.uploads, self.reports):
            deleted = cap.prune()
            if deleted:
                log.info("Deleted the %d oldest files of %s (caps: %d files, %d MB)", deleted, cap.path,
                         cap.max_files, cap.max_bytes // 2**20)

    def start_sweeping(self, every_s: float = SWEEP_S, also: Callable[[], object] | None = None) -> None:
        """Sweep every ``every_s`` seconds in a background thread until :meth:`remove`, each
        sweep followed by ``also`` (the app's other periodic chore: giving freed memory back)."""
        def loop() -> None:
            while not self._stop.wait(every_s):
                self.sweep()
                if also is not None:
                    also()

        self._sweeper = threading.Thread(target=loop, name="kgclip-sweeper", daemon=True)
        self._sweeper.start()

    def remove(self) -> None:
        """Stop sweeping and delete the whole folder (the app is stopping)."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)
