"""The report's event: the session's prediction written as an HTML report and an MP4 of the
clip with the heatmap, in a folder per request that is deleted after a session's lifetime."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from kgclip_core.errors import KGClipError
from kgclip_core.report import write_report
from kgclip_ui.common import SESSION_TTL_S, Session, refusal, user_error

# Reports are written here, one folder per request, and deleted after SESSION_TTL_S (Gradio
# serves its own copy of each file from its cache).
REPORTS = Path(tempfile.gettempdir()) / "kgclip-reports"


def _prune(folder: Path, max_age_s: float) -> None:
    """Delete the entries of ``folder`` older than ``max_age_s``."""
    cutoff = time.time() - max_age_s
    for entry in folder.glob("*") if folder.is_dir() else []:
        if entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def make_report(session: Session | None, kind: str | None, which: str | None, opacity: float) -> list[str]:
    """The session's prediction as an HTML report and an MP4 of the clip with the heatmap shown."""
    if session is None:
        raise refusal("Recognise a clip first; the report is of its prediction.")
    _prune(REPORTS, SESSION_TTL_S)
    REPORTS.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=REPORTS))
    video = session.pred.video.path
    try:
        files = write_report(session.pred, folder / f"{Path(video).stem}-kgclip-report.html", kind, which,
                             float(opacity))
    except KGClipError as err:
        raise user_error(err, video) from err
    return [str(f) for f in files]
